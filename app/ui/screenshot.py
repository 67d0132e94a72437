"""``python main.py --screenshot DIR``: open the window on a sample case, analyse it, and
save PNGs of the main window, the LLM pane and the history into DIR, then exit.

The sample cases are stored in a scratch case history, never in the user's; the window's
layout is not remembered. Used by ``scripts/screenshots.sh`` for the README.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from app.settings import load_settings
from app.ui.app import apply_theme, make_application, make_window, start_background
from app.ui.main_window import MainWindow
from app.ui.tasks import SerialisedStore

log = logging.getLogger("casewise.ui")
SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "sample_cases.json"
SHOWN_SAMPLE = "sample-3"  # mixed feelings: the interesting, usually escalated, case
SIZE = (1280, 720)  # the smallest size the window is made for, with the LLM pane open
POLL_MS = 250
TIME_LIMIT_S = 300  # the embedded LLM loads and writes slowly on a busy 2-core machine


def store_samples(store, bench, texts: list[str]) -> None:
    """File the other sample cases too, so the history has more than one row."""
    from app.pipeline import Steps, run_batch
    from models.types import CaseInput

    run_batch(bench, [CaseInput(text, "sample") for text in texts], store,
              steps=Steps(explain=False))


class Photographer(QObject):
    """Drives the window through one case and takes the pictures when it has settled."""

    def __init__(self, window: MainWindow, out: Path, text: str, others: list[str]) -> None:
        super().__init__(window)
        self.window, self.out, self.text, self.others = window, out, text, others
        self.context = window.context
        self.saved: list[Path] = []
        self.asked_llm = False
        self.poll = QTimer(self, interval=POLL_MS, timeout=self._check)
        self.context.workbench_changed.connect(self._model_ready)
        QTimer.singleShot(TIME_LIMIT_S * 1000, self._give_up)

    def _model_ready(self, bench) -> None:
        if bench is None:  # no model: the first-start state is worth a picture too
            QTimer.singleShot(500, self._finish)
            return
        store, view = self.context.store, self.window.case_view
        if store is not None:  # scored on the compute pool, filed by the database worker
            serial = SerialisedStore(store, self.context.runner)
            self.context.runner.run("store samples", lambda _ctx: store_samples(
                serial, bench, self.others)).start()
        view.set_case_text(self.text, "sample_cases.json")
        view.analyze()
        self.poll.start()

    def _check(self) -> None:
        state, view = self.window.case_view.state, self.window.case_view
        if state is None or state.attribution is None or view.busy:
            return
        if state.opinion is None and not self.asked_llm:
            self.asked_llm = True  # an AUTO case: ask anyway, to show the pane
            view.ask_llm()
            return
        if state.opinion is None or state.case_id is None:
            return
        self.poll.stop()
        QTimer.singleShot(600, self._finish)  # the last writes and repaints

    def _finish(self) -> None:
        self.save(self.window, "main-window.png")
        self.save(self.window.llm_dock, "llm-pane.png")
        self.window.llm_dock.hide()  # the history gets the whole width
        self.window.tabs.setCurrentIndex(1)
        QTimer.singleShot(1500, self._history_shown)

    def _history_shown(self) -> None:
        self.save(self.window, "history.png")
        QApplication.instance().exit(0)

    def save(self, widget: QWidget, name: str) -> None:
        path = self.out / name
        widget.grab().save(str(path))
        self.saved.append(path)
        print(path)

    def _give_up(self) -> None:
        print(f"screenshot: the case did not settle within {TIME_LIMIT_S} s", file=sys.stderr)
        self._finish()


def take_screenshots(out: Path) -> int:
    """Run the window through a sample case and save its pictures in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    samples = json.loads(SAMPLES.read_text(encoding="utf-8"))
    shown = next(s["text"] for s in samples if s["id"] == SHOWN_SAMPLE)
    others = [s["text"] for s in samples if s["id"] != SHOWN_SAMPLE]
    app = make_application(sys.argv[:1])
    settings = load_settings()
    apply_theme(app, settings.theme)
    with tempfile.TemporaryDirectory(prefix="casewise-screens-") as scratch:
        context, window = make_window(settings, None, remember_layout=False)
        window.resize(*SIZE)
        window.show()
        photographer = Photographer(window, out, shown, others)
        start_background(context, window, Path(scratch) / "casewise.db")
        code = app.exec()
        context.close()
    return code if photographer.saved else 1
