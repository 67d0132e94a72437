"""One place for background work: a compute pool and one serialised database worker.

Work is a plain function of a ``TaskContext`` (progress callback, cancel flag, a channel for
partial results) run on a worker thread; its outcome comes back to the GUI thread as signals.
Failures always reach ``TaskRunner.failed`` (the window shows them and they are logged), so no
error is ever silent. Database work goes to a pool of exactly one thread, so the repository is
used by one thread at a time and writes happen in the order they were asked for.
"""

from __future__ import annotations

import concurrent.futures
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from models.progress import CancelFlag, Cancelled, Progress

log = logging.getLogger(__name__)


@dataclass
class TaskContext:
    """What a background function gets: report progress, check cancel, send partial results."""

    name: str
    cancel: CancelFlag = field(default_factory=CancelFlag)
    progress: Callable[[Progress], None] = lambda _p: None
    partial: Callable[[Any], None] = lambda _x: None


class TaskSignals(QObject):
    """Created on the GUI thread, so every connected slot runs there (queued)."""

    progress = Signal(object)
    partial = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()


class Task(QRunnable):
    """A handle on one piece of background work: chain the callbacks, then ``start()``.
    Callbacks run on the GUI thread."""

    def __init__(self, name: str, work: Callable[[TaskContext], Any],
                 starter: Callable[[Task], Task], owner: QObject | None = None) -> None:
        super().__init__()
        self._starter = starter
        self._owner = owner  # callbacks are dropped once it is deleted (see ``if_alive``)
        self.setAutoDelete(False)  # the handle outlives the run: the window may cancel it
        self.name = name
        self.signals = TaskSignals()
        self.context = TaskContext(name, progress=self.signals.progress.emit,
                                   partial=self.signals.partial.emit)
        self._work = work
        self.done = False

    # -- chaining (GUI thread) -------------------------------------------------------------
    def _connect(self, signal: Any, callback: Callable) -> Task:
        signal.connect(callback if self._owner is None else if_alive(self._owner, callback))
        return self

    def on_success(self, callback: Callable[[Any], None]) -> Task:
        return self._connect(self.signals.succeeded, callback)

    def on_failure(self, callback: Callable[[str], None]) -> Task:
        return self._connect(self.signals.failed, callback)

    def on_progress(self, callback: Callable[[Progress], None]) -> Task:
        return self._connect(self.signals.progress, callback)

    def on_partial(self, callback: Callable[[Any], None]) -> Task:
        return self._connect(self.signals.partial, callback)

    def on_cancelled(self, callback: Callable[[], None]) -> Task:
        return self._connect(self.signals.cancelled, callback)

    def on_finished(self, callback: Callable[[], None]) -> Task:
        return self._connect(self.signals.finished, callback)

    def start(self) -> Task:
        return self._starter(self)

    def cancel(self) -> None:
        self.context.cancel.cancel()

    @property
    def cancelled(self) -> bool:
        return self.context.cancel.is_set()

    # -- the worker thread -----------------------------------------------------------------
    def run(self) -> None:
        try:
            result = self._work(self.context)
        except Cancelled:
            self.signals.cancelled.emit()
        except Exception as exc:  # every failure is reported, never swallowed
            log.error("task %s failed:\n%s", self.name, traceback.format_exc())
            self.signals.failed.emit(_message_of(exc))
        else:
            if self.context.cancel.is_set():
                self.signals.cancelled.emit()
            else:
                self.signals.succeeded.emit(result)
        finally:
            self.done = True
            self.signals.finished.emit()


def _message_of(exc: Exception) -> str:
    from models.errors import CasewiseError

    text = str(exc) or type(exc).__name__
    if isinstance(exc, CasewiseError) or type(exc).__module__.startswith("app."):
        return text  # our own errors already say what to do
    return f"{type(exc).__name__}: {text}"


class TaskRunner(QObject):
    """Starts tasks on the compute pool or the database worker and keeps them alive."""

    failed = Signal(str, str)  # task name, message: for the window's notification bar
    busy_changed = Signal(int)  # tasks running

    def __init__(self, compute_threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.compute = QThreadPool(self)
        self.compute.setMaxThreadCount(compute_threads)
        self.database = QThreadPool(self)
        self.database.setMaxThreadCount(1)  # the one serialised worker for the store
        self._running: set[Task] = set()

    def run(self, name: str, work: Callable[[TaskContext], Any], *,
            pool: str = "compute", owner: QObject | None = None) -> Task:
        """A task for ``work``, not started: connect its callbacks, then call ``.start()``
        (a signal emitted before a slot is connected would be lost)::

            runner.run("explain", lambda ctx: explain_case(..., cancel=ctx.cancel)) \
                .on_success(self.show).on_progress(self.bar.update).start()

        With ``owner`` (the widget the answer is for), every callback is dropped once the
        owner is deleted: the answer can arrive after its window was closed."""
        task = Task(name, work, self._start, owner)
        task.signals.failed.connect(lambda message: self.failed.emit(name, message))
        task.signals.finished.connect(lambda: self._forget(task))
        task.pool = pool
        return task

    def db(self, name: str, work: Callable[[], Any], *, owner: QObject | None = None) -> Task:
        """Database work (no progress, no cancel): one at a time, in the order asked."""
        return self.run(name, lambda _ctx: work(), pool="database", owner=owner)

    def _start(self, task: Task) -> Task:
        self._running.add(task)
        self.busy_changed.emit(len(self._running))
        (self.database if task.pool == "database" else self.compute).start(task)
        return task

    def _forget(self, task: Task) -> None:
        self._running.discard(task)
        self.busy_changed.emit(len(self._running))

    @property
    def running(self) -> int:
        return len(self._running)

    def running_names(self) -> list[str]:
        """What is running, for the status bar (sorted, repeats kept)."""
        return sorted(task.name for task in self._running)

    def cancel_all(self) -> None:
        for task in list(self._running):
            task.cancel()

    def wait(self, msecs: int = 30000) -> bool:
        """Cancel nothing, wait for everything: for tests and for a clean exit."""
        return self.compute.waitForDone(msecs) and self.database.waitForDone(msecs)


class SerialisedStore:
    """The repository as seen from a compute-pool thread: every method call runs on the
    runner's one database worker and the caller waits for its answer, so long work (batch
    scoring, exports) never writes beside the database worker. Attributes that are not
    methods are read directly. Never use it *on* the database worker: it would wait for
    itself."""

    def __init__(self, store: Any, runner: TaskRunner) -> None:
        self._store = store
        self._pool = runner.database

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not callable(attribute):
            return attribute
        return lambda *args, **kwargs: self._call(attribute, args, kwargs)

    def _call(self, method: Callable, args: tuple, kwargs: dict) -> Any:
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(method(*args, **kwargs))
            except BaseException as exc:  # handed to the waiting caller, which raises it
                future.set_exception(exc)

        self._pool.start(run)
        return future.result()


def if_alive(owner: QObject, callback: Callable) -> Callable:
    """``callback``, or nothing once ``owner`` is deleted: a worker's answer can arrive after
    the window that asked was closed."""

    def call(*args: Any) -> None:
        if shiboken6.isValid(owner):
            callback(*args)

    return call


def format_duration(seconds: float | None) -> str:
    """A short, rounded duration for "time left" labels."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
