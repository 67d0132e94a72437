"""The history table at 100,000 cases: time to first paint, page fetches while scrolling to
the end, and how long the GUI thread is ever blocked.

    OMP_NUM_THREADS=1 QT_QPA_PLATFORM=offscreen .venv/bin/python \\
        benchmarks/bench_history_view.py [--db PATH] [--cases N] [--steps N]

Fills a temporary store (or ``--db PATH``, reused when it already holds the cases) with the
synthetic cases of ``bench_store.py`` (``add_cases`` in chunks of 500), opens the real
``HistoryView`` on it through a real ``AppContext`` (pages come from the database worker),
then:

- first paint: from creating the view to the viewport painting real rows of the first page;
- scroll to the end in ``--steps`` jumps of the scroll bar (as paging down would), each
  timed until every visible row is filled;
- a drag of the scroll-bar thumb from top to bottom in 2 s (one position a frame), then the
  time until the last screen is filled, and how many pages were fetched on the way;
- a search, a filter and a sort, each until the first screen is filled.

Throughout, a 5 ms timer on the GUI thread records the longest gap between its ticks: the
longest the window was ever unresponsive.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import bench_store  # noqa: E402  (the synthetic 100k history, shared with the store benchmark)
from PySide6.QtCore import QEvent, QEventLoop, QObject, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.settings import Settings  # noqa: E402
from app.ui.context import AppContext  # noqa: E402
from app.ui.history_view import COLUMNS, HistoryView  # noqa: E402

TIMEOUT = 60.0
WAIT = QEventLoop.ProcessEventsFlag.AllEvents | QEventLoop.ProcessEventsFlag.WaitForMoreEvents
DRAG_SECONDS = 2.0
FRAME_MS = 16


class StallMeter(QObject):
    """The longest gap between ticks of a 5 ms timer: how long the GUI thread was busy."""

    def __init__(self) -> None:
        super().__init__()
        self.timer = QTimer(self, interval=5)
        self.timer.timeout.connect(self._tick)
        self.last = time.perf_counter()
        self.worst = 0.0

    def start(self) -> None:
        self.last, self.worst = time.perf_counter(), 0.0
        if not self.timer.isActive():
            self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last)
        self.last = now


class PaintWatch(QObject):
    """Records when the table's viewport paints."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.paints: list[float] = []
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.paints.append(time.perf_counter())
        return False


def pump_until(app: QApplication, done: Callable[[], bool], what: str) -> float:
    """Run the event loop until ``done()``; the seconds it took."""
    start = time.perf_counter()
    while not done():
        if time.perf_counter() - start > TIMEOUT:
            raise SystemExit(f"timed out waiting for {what}")
        pump(app)
    return time.perf_counter() - start


_LOOP: QEventLoop | None = None


def pump(app: QApplication) -> None:
    """Handle what is pending, waiting for at least one event (the stall meter's 5 ms timer
    guarantees one)."""
    global _LOOP
    _LOOP = _LOOP or QEventLoop()
    _LOOP.processEvents(WAIT)


def visible_rows(view: HistoryView) -> range:
    table = view.table
    first = max(0, table.rowAt(0))
    last = table.rowAt(table.viewport().height() - 1)
    last = view.model.rowCount() - 1 if last < 0 else last
    return range(first, last + 1)


def screen_filled(view: HistoryView) -> bool:
    model = view.model
    return model.settled and all(model.case_id_at(r) is not None for r in visible_rows(view))


def stats(values: list[float]) -> tuple[str, str, str]:
    if not values:
        return "–", "–", "–"
    return (f"{statistics.median(values) * 1000:.1f}", f"{bench_store.p95(values) * 1000:.1f}",
            f"{max(values) * 1000:.1f}")


class Run:
    def __init__(self, app: QApplication, view: HistoryView, stall: StallMeter) -> None:
        self.app, self.view, self.stall = app, view, stall
        self.rows: list[tuple[str, tuple[str, str, str], str]] = []
        self.fetches: list[float] = []
        self.arrivals: list[float] = []  # GUI-thread time to take in one page
        view.model.page_fetched.connect(lambda _page, seconds: self.fetches.append(seconds))
        arrived = view.model._arrived

        def timed_arrival(*args) -> None:
            start = time.perf_counter()
            arrived(*args)
            self.arrivals.append(time.perf_counter() - start)

        view.model._arrived = timed_arrival  # the model looks it up at each answer

    def add(self, name: str, values: list[float], note: str = "") -> None:
        self.rows.append((name, stats(values), note))

    def measured(self, name: str, action: Callable[[], None], note: str = "") -> None:
        """Time ``action`` until the screen is filled; with the GUI's longest stall."""
        self.fetches.clear()
        self.stall.start()
        start = time.perf_counter()
        action()
        pump_until(self.app, lambda: screen_filled(self.view), name)
        self.add(name, [time.perf_counter() - start],
                 f"{note}{'; ' if note else ''}longest GUI stall "
                 f"{self.stall.worst * 1000:.0f} ms, {len(self.fetches)} page(s)")


def first_paint(app: QApplication, context: AppContext) -> tuple[HistoryView, float, float]:
    start = time.perf_counter()
    view = HistoryView(context)
    watch = PaintWatch(view.table.viewport())
    view.resize(1280, 800)
    view.show()
    built = time.perf_counter() - start
    pump_until(app, lambda: screen_filled(view), "the first page")
    rows_at = time.perf_counter()
    pump_until(app, lambda: bool(watch.paints) and watch.paints[-1] >= rows_at,
               "a paint with rows")
    return view, built, next(p for p in watch.paints if p >= rows_at) - start


def scroll_to_end(run: Run, steps: int) -> None:
    bar = run.view.table.verticalScrollBar()
    times, fetches = [], []
    run.stall.start()
    for step in range(1, steps + 1):
        run.fetches.clear()
        start = time.perf_counter()
        bar.setValue(round(bar.maximum() * step / steps))
        pump_until(run.app, lambda: screen_filled(run.view), f"scroll step {step}")
        times.append(time.perf_counter() - start)
        fetches += run.fetches
    run.add(f"scroll to the end in {steps} jumps: screen filled after each jump", times,
            f"longest GUI stall {run.stall.worst * 1000:.0f} ms")
    run.add("  page fetch, request to rows on screen (incl. queue)", fetches,
            f"{len(fetches)} pages")


def drag_to_end(run: Run) -> None:
    bar = run.view.table.verticalScrollBar()
    bar.setValue(0)
    pump_until(run.app, lambda: screen_filled(run.view), "the top")
    run.fetches.clear()
    run.stall.start()
    frames = int(DRAG_SECONDS * 1000 / FRAME_MS)
    for frame in range(1, frames + 1):  # one thumb position a frame, as a drag does
        bar.setValue(round(bar.maximum() * frame / frames))
        end = time.perf_counter() + FRAME_MS / 1000
        while time.perf_counter() < end:
            pump(run.app)
    released = time.perf_counter()
    pump_until(run.app, lambda: screen_filled(run.view), "the end after the drag")
    settle = time.perf_counter() - released
    run.add(f"drag the thumb top to bottom in {DRAG_SECONDS:.0f} s: last screen filled after "
            "release", [settle], f"{len(run.fetches)} pages fetched of "
            f"{run.view.model.rowCount() // 100:,}; longest GUI stall "
            f"{run.stall.worst * 1000:.0f} ms")


def queries(run: Run, word: str) -> None:
    view = run.view
    view.table.verticalScrollBar().setValue(0)

    def search() -> None:
        view.search.setText(word)
        view.apply_filters()

    run.measured(f"search '{word}' (first screen)", search)
    name, timing, note = run.rows[-1]
    run.rows[-1] = (name, timing, f"{note}; {view.model.rowCount():,} matches")
    run.measured("clear the search", view.clear_filters)
    run.measured("filter: escalated", lambda: view.decision_filter.setCurrentIndex(2))
    run.measured("filter: reviewed by Ann Lee", lambda: (view.reviewer_filter.setText("Ann Lee"),
                                                          view.apply_filters()))
    view.clear_filters()
    pump_until(run.app, lambda: screen_filled(view), "cleared filters")
    confidence = next(i for i, c in enumerate(COLUMNS) if c.key == "confidence")
    run.measured("sort by confidence", lambda: view.table.sortByColumn(
        confidence, Qt.SortOrder.AscendingOrder))
    view.table.verticalScrollBar().setValue(view.table.verticalScrollBar().maximum())
    pump_until(run.app, lambda: screen_filled(view), "the end, sorted")


def main() -> int:
    parser = bench_store.store_parser(__doc__)
    parser.add_argument("--steps", type=int, default=40, help="scroll-bar jumps to the end")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="casewise-bench-view-"))
    path = args.db or folder / "casewise.db"
    try:
        words = bench_store.Words(random.Random(0))
        fill_seconds = bench_store.prepare(path, args.cases, words)
        app = QApplication.instance() or QApplication([])
        context = AppContext(Settings(data_dir=str(folder / "data")), config_dir=folder)
        context.open_store(path)
        pump_until(app, lambda: context.store is not None, "the store")
        stall = StallMeter()
        stall.start()
        view, built, painted = first_paint(app, context)
        run = Run(app, view, stall)
        run.add("build the view (GUI thread)", [built])
        run.add("time to first paint with rows", [painted],
                f"longest GUI stall {stall.worst * 1000:.0f} ms")
        scroll_to_end(run, args.steps)
        run.add("  GUI-thread time to take in a page (format 100 rows, notify the view)",
                run.arrivals, f"{len(run.arrivals)} pages")
        drag_to_end(run)
        queries(run, bench_store.RECURRING[1])
        context.close()
        print(f"History view benchmark: {view.model.rowCount():,} cases, pages of 100, "
              f"viewport {view.table.viewport().width()}x{view.table.viewport().height()} px "
              f"({len(visible_rows(view))} rows), SQLite {sqlite3.sqlite_version}, "
              f"{os.cpu_count()} CPUs, platform {app.platformName()}"
              + (f"; filled in {fill_seconds:.0f} s" if fill_seconds else "") + ".\n")
        print("| measurement | median ms | p95 ms | max ms | notes |")
        print("|---|---:|---:|---:|---|")
        for name, (median, p95, worst), note in run.rows:
            print(f"| {name} | {median} | {p95} | {worst} | {note} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
