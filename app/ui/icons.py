"""The app's icons: small SVGs drawn for Casewise in ``assets/icons`` (one stroke style, one
slate colour readable on light and dark palettes, and a signal colour where the meaning needs
it: accept green, override amber, cancel and remote warnings red).

Qt's SVG icon engine renders them at whatever size and device pixel ratio a widget asks for,
so they stay sharp on high-DPI screens.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

ASSETS = Path(__file__).resolve().parents[2] / "assets"
ICONS_DIR = ASSETS / "icons"
APP_ICON = ASSETS / "casewise.svg"
NAMES = ("analyze", "new", "open", "next", "history", "export", "verify", "settings", "model",
         "train", "import", "accept", "override", "defer", "cancel", "llm", "remote-warning",
         "about")


@cache
def icon(name: str) -> QIcon:
    """The icon called ``name`` (see ``NAMES``); ``"casewise"`` is the app icon. An unknown
    name raises KeyError so a typo shows up in the tests, not as a blank button."""
    if name == "casewise":
        return QIcon(str(APP_ICON))
    if name not in NAMES:
        raise KeyError(f"no icon {name!r}; the icons are {', '.join(NAMES)}")
    return QIcon(str(ICONS_DIR / f"{name}.svg"))


def app_icon() -> QIcon:
    return icon("casewise")
