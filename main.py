"""Casewise: `python main.py` opens the app; `python main.py COMMAND` runs headless.

See `python main.py --help` for the commands.
"""

import os
import sys

# Nothing may reach a model hub at run time: every model comes from a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
