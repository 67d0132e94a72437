"""Waiting on the History tab from a test: database work on the window's worker, the ids the
table shows, rows whose pages have arrived."""

from __future__ import annotations

TIMEOUT = 15000  # ms


def run_db(context, qtbot, work):
    """``work(store)`` on the window's database worker; its result."""
    task = context.runner.db("test", lambda: work(context.store))
    with qtbot.waitSignal(task.signals.succeeded, timeout=TIMEOUT) as blocker:
        task.start()
    return blocker.args[0]


def shown_ids(view) -> list[int]:
    return [view.model.case_id_at(r) for r in range(view.model.rowCount())]


def wait_rows_loaded(qtbot, view, rows) -> None:
    qtbot.waitUntil(lambda: all(view.model.case_id_at(r) is not None for r in rows),
                    timeout=TIMEOUT)
