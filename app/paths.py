"""Where Casewise keeps its data and settings: platformdirs, or $CASEWISE_HOME when set."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_path, user_data_path

APP_NAME = "casewise"
HOME_VARIABLE = "CASEWISE_HOME"
DB_FILE = "casewise.db"  # the case history, inside the data directory


def data_dir() -> Path:
    home = os.environ.get(HOME_VARIABLE)
    return Path(home) if home else user_data_path(APP_NAME, appauthor=False)


def config_dir() -> Path:
    home = os.environ.get(HOME_VARIABLE)
    return Path(home) / "config" if home else user_config_path(APP_NAME, appauthor=False)
