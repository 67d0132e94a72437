"""Progress reporting and cancellation for long work, free of any UI toolkit.

Long-running functions take ``progress: ProgressCallback | None`` and ``cancel: CancelFlag | None``.
The CLI turns the callback into a text bar; the desktop app turns it into a Qt signal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` steps in ``stage``, with time estimates."""

    stage: str
    done: int
    total: int
    message: str = ""
    elapsed_seconds: float = 0.0
    eta_seconds: float | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised inside long work when its cancel flag is set."""


class CancelFlag:
    """A thread-safe flag: the UI sets it, the worker checks it between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def raise_if_cancelled(cancel: CancelFlag | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled by the user")


class ProgressTracker:
    """Counts steps of one stage and reports them with elapsed time and time left."""

    def __init__(self, stage: str, total: int, callback: ProgressCallback | None) -> None:
        self.stage = stage
        self.total = total
        self.done = 0
        self._callback = callback
        self._start = time.monotonic()

    def advance(self, steps: int = 1, message: str = "") -> None:
        self.done += steps
        self.report(message)

    def report(self, message: str = "") -> None:
        if self._callback is None:
            return
        elapsed = time.monotonic() - self._start
        eta = None
        if 0 < self.done < self.total:
            eta = elapsed / self.done * (self.total - self.done)
        self._callback(
            Progress(self.stage, self.done, self.total, message, elapsed, eta)
        )
