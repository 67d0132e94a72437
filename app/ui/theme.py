"""Light and dark palettes, and "system", which follows the desktop's colour scheme live.

Fusion is used on every platform: it draws entirely from the palette, so both palettes look
the same everywhere and nothing native paints a light control into a dark window. The colours
are calm and low in saturation, with one slate-blue accent (selection, links, focus) that the
icons share.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
_SETTING = "casewiseThemeSetting"  # app property: what the user chose
_APPLIED = "casewiseTheme"  # app property: "light" or "dark", what is shown now
_Role, _Group = QPalette.ColorRole, QPalette.ColorGroup

LIGHT = {
    _Role.Window: "#f4f5f7", _Role.WindowText: "#1f2933", _Role.Base: "#ffffff",
    _Role.AlternateBase: "#f0f3f7", _Role.Text: "#1f2933", _Role.Button: "#eceff3",
    _Role.ButtonText: "#1f2933", _Role.BrightText: "#ffffff", _Role.Highlight: "#3f6e9e",
    _Role.HighlightedText: "#ffffff", _Role.Link: "#2f5f8f", _Role.LinkVisited: "#6a4c93",
    _Role.ToolTipBase: "#fffef5", _Role.ToolTipText: "#1f2933", _Role.PlaceholderText: "#7b8794",
    _Role.Light: "#ffffff", _Role.Midlight: "#e4e7eb", _Role.Mid: "#c5cbd3",
    _Role.Dark: "#9aa5b1", _Role.Shadow: "#52606d", _Role.Accent: "#3f6e9e",
}
DARK = {
    _Role.Window: "#1f2328", _Role.WindowText: "#e4e7eb", _Role.Base: "#16191d",
    _Role.AlternateBase: "#1d2127", _Role.Text: "#e4e7eb", _Role.Button: "#2a2f36",
    _Role.ButtonText: "#e4e7eb", _Role.BrightText: "#ffffff", _Role.Highlight: "#4f83b8",
    _Role.HighlightedText: "#ffffff", _Role.Link: "#8ab8e6", _Role.LinkVisited: "#b99be0",
    _Role.ToolTipBase: "#2a2f36", _Role.ToolTipText: "#e4e7eb", _Role.PlaceholderText: "#8a96a3",
    _Role.Light: "#3a4048", _Role.Midlight: "#30353d", _Role.Mid: "#3e444d",
    _Role.Dark: "#121418", _Role.Shadow: "#000000", _Role.Accent: "#4f83b8",
}
DISABLED_TEXT = {"light": "#9aa5b1", "dark": "#6b7682"}

# Small, palette-relative touches: the palette does the colours.
STYLE_SHEET = """
QToolTip { padding: 4px; }
QTableView { gridline-color: palette(midlight); }
QHeaderView::section { padding: 4px 6px; }
QLabel#placeholderNote { color: palette(placeholder-text); }
"""


def palette_for(name: str) -> QPalette:
    """The light or dark palette (disabled text greyed in every role that shows text)."""
    palette = QPalette()
    for role, colour in (DARK if name == "dark" else LIGHT).items():
        palette.setColor(role, QColor(colour))
    grey = QColor(DISABLED_TEXT["dark" if name == "dark" else "light"])
    for role in (_Role.WindowText, _Role.Text, _Role.ButtonText, _Role.HighlightedText):
        palette.setColor(_Group.Disabled, role, grey)
    return palette


def system_is_dark() -> bool:
    """What the desktop asks for; Unknown (no preference, or the offscreen platform) is light."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication, theme: str = "system") -> str:
    """Apply ``theme`` ("system", "light" or "dark"; anything else is "system") and return the
    palette now shown, "light" or "dark". "system" keeps following the desktop's changes."""
    theme = theme if theme in THEMES else "system"
    app.setStyle("Fusion")
    app.setProperty(_SETTING, theme)
    _tell_platform(theme)
    _follow_system(app)
    return _apply_palette(app)


def current_theme(app: QApplication) -> str:
    """"light" or "dark": the palette shown now (for views that draw their own colours)."""
    return app.property(_APPLIED) or "light"


def _apply_palette(app: QApplication) -> str:
    setting = app.property(_SETTING) or "system"
    name = setting if setting != "system" else ("dark" if system_is_dark() else "light")
    app.setPalette(palette_for(name))
    app.setStyleSheet(STYLE_SHEET)
    app.setProperty(_APPLIED, name)
    return name


def _tell_platform(theme: str) -> None:
    # Qt 6.8+: an explicit choice also reaches native parts (title bars); "system" unsets it
    # so colorScheme() reports the desktop's own preference again.
    hints = QGuiApplication.styleHints()
    if theme == "system":
        if hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
    elif hasattr(hints, "setColorScheme"):
        hints.setColorScheme(Qt.ColorScheme.Dark if theme == "dark" else Qt.ColorScheme.Light)


def _follow_system(app: QApplication) -> None:
    if app.property("casewiseFollowsSystem"):
        return  # connected once per application
    app.setProperty("casewiseFollowsSystem", True)

    def changed(_scheme: object) -> None:
        if (app.property(_SETTING) or "system") == "system":
            _apply_palette(app)

    QGuiApplication.styleHints().colorSchemeChanged.connect(changed)
