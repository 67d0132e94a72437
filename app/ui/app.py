"""Start the desktop app: the window is shown at once; the case history opens, the model
loads and the LLM and shap warm up behind it, with their status in the window."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.settings import Settings, load_settings
from app.ui.context import AppContext
from app.ui.main_window import MainWindow, optional

log = logging.getLogger("casewise.ui")


def setup_logging(directory: Path) -> Path:
    """Everything worth knowing goes to ``casewise.log`` (rotated) as well as stderr."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "casewise.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3,
                                                   encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    return path


def make_application(argv: list[str]) -> QApplication:
    """The one QApplication, with high-DPI defaults and the app's names."""
    existing = QApplication.instance()
    if existing is not None:
        return existing
    # Fractional scale factors (125 %, 150 %) are used as they are, not rounded to 1 or 2.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication(argv)
    app.setApplicationName("Casewise")
    app.setOrganizationName("Casewise")
    app.setDesktopFileName("casewise")
    return app


def apply_theme(app: QApplication, theme: str) -> None:
    themed = optional("app.ui.theme", "apply_theme")
    if themed is not None:
        themed(app, theme)
    else:
        app.setStyle("Fusion")


def make_window(settings: Settings, config_dir: Path | None,
                remember_layout: bool = True) -> tuple[AppContext, MainWindow]:
    context = AppContext(settings, config_dir=config_dir)
    return context, MainWindow(context, remember_layout)


def start_background(context: AppContext, window: MainWindow,
                     store_location: str | Path | None = None) -> None:
    """Open the history, load the model, then warm up the LLM and shap: all off the GUI
    thread, in that order of need."""
    context.open_store(store_location)
    warmed = []

    def warm_once(bench) -> None:
        if bench is not None and not warmed:
            warmed.append(True)
            context.warm_up()
    context.workbench_changed.connect(warm_once)
    window.show_loading()
    context.load_workbench()


def run_app(argv: list[str]) -> int:
    """``python main.py``: the window, shown within a moment of the start."""
    from app.paths import config_dir

    app = make_application(argv)
    settings = load_settings()
    log_file = setup_logging(settings.data_path() / "logs")
    apply_theme(app, settings.theme)
    context, window = make_window(settings, config_dir())
    window.show()
    log.info("window shown; log at %s", log_file)
    QTimer.singleShot(0, lambda: start_background(context, window))
    return app.exec()
