"""Handing a file to the desktop: the exported PDF opens in the user's own viewer."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices


def open_file(path: str | Path) -> bool:
    """Open ``path`` in the desktop's viewer for its type; False when none took it."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))
