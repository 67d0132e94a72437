"""Signed models in tests: one installation key for the whole session.

The application trusts only the installation key under ``$CASEWISE_HOME/config``. The model
fixtures are signed with the session's key (conftest's ``installation_home``); a test that
points ``CASEWISE_HOME`` at a folder of its own gives it a copy of that key with
``share_installation_key``, so the fixtures' models stay trusted there, as they would on one
machine whose data folder moved.
"""

from __future__ import annotations

import shutil
from pathlib import Path

KEY_FILE = "installation-key.json"  # app.accounts.installation.KEY_FILE


def session_key_file(installation_home: Path) -> Path:
    return installation_home / "config" / KEY_FILE


def share_installation_key(installation_home: Path, home: Path) -> Path:
    """Put the session's installation key in ``home``'s configuration folder (unless one is
    there already) and return ``home``."""
    target = home / "config" / KEY_FILE
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(session_key_file(installation_home), target)
        target.chmod(0o600)
    return home
