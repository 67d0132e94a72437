"""Casewise: `python main.py` opens the app; `python main.py COMMAND` runs headless.

See `python main.py --help` for the commands.
"""

import os
import sys
from pathlib import Path

# Nothing may reach a model hub at run time: every model comes from a local directory.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from app.cli import main


def open_window(args) -> int:
    """The desktop app, or its screenshots; Qt is imported only here and in app/ui."""
    if args.screenshot:
        from app.ui.screenshot import take_screenshots

        return take_screenshots(Path(args.screenshot))
    from app.ui.app import run_app

    return run_app(sys.argv[:1])


if __name__ == "__main__":
    sys.exit(main(open_window=open_window))
