"""``AppContext``: what every window and panel shares — settings, the task runner, the case
history and the loaded model — with signals for when any of them changes.

The store is only ever touched on the runner's database worker (``runner.db``); the model is
loaded on the compute pool behind the window, which is shown at once.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.settings import Settings, api_key, save_settings
from app.ui.tasks import Task, TaskRunner

log = logging.getLogger(__name__)


def settle_heap() -> None:
    """Move everything alive now (models, shap, torch: close to a million objects) out of the
    garbage collector's sight. Otherwise each full collection walks them all, holding the GIL
    for most of a second, and the window freezes while it does (seen in the tests). No
    collection first: that would be the same freeze, once; the garbage kept is small."""
    gc.freeze()


class AppContext(QObject):
    settings_changed = Signal(object)  # Settings
    workbench_changed = Signal(object)  # app.casework.Workbench, or None (no model)
    store_ready = Signal(object)  # CaseRepository
    # Something was stored: the written case's CaseSummary (its row updates in place), or
    # None when lists should fetch again (a batch, a new case elsewhere).
    cases_changed = Signal(object)
    message = Signal(str, str)  # level ("info" | "warning" | "error"), text
    offer = Signal(str, str, str, object)  # level, text, action label, action (a callable)

    def __init__(self, settings: Settings, runner: TaskRunner | None = None,
                 config_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_dir = config_dir
        self.runner = runner or TaskRunner(parent=self)
        self.runner.failed.connect(lambda name, text: self.message.emit("error", text))
        self.store = None
        self.workbench = None
        self._backend = None
        self._backend_key: tuple | None = None
        self._backend_lock = threading.Lock()

    @property
    def data_dir(self) -> Path:
        return self.settings.data_path()

    # -- settings ----------------------------------------------------------------------------
    def update_settings(self, settings: Settings) -> None:
        """Save and announce new settings (raises ValueError with what is wrong)."""
        save_settings(settings, self.config_dir)
        self.settings = settings
        self.settings_changed.emit(settings)

    # -- the case history --------------------------------------------------------------------
    def open_store(self, location: str | Path | None = None) -> Task:
        """Open (and migrate) the case history on the database worker (importing the store
        takes ~0.4 s of SQLAlchemy and Alembic: not on the GUI thread either)."""
        from app.paths import DB_FILE

        target = location or self.data_dir / DB_FILE

        def opened(store) -> None:
            from app.store import StoreCorrupt  # loaded by now, on the database worker

            if isinstance(store, StoreCorrupt):
                self._offer_backup(store, target)
                return
            self.store = store
            self.store.actor = self.settings.reviewer_name()
            if self.workbench is not None:  # the model loaded first: file it now
                self._register(self.workbench)
            self.store_ready.emit(store)

        return self.runner.db("open case history", lambda: _open_or_damaged(target)) \
            .on_success(opened).start()

    def _offer_backup(self, damaged, target) -> None:
        """A damaged history is never touched: offer to work on a copy of its newest backup."""
        backups = getattr(damaged, "backups", None) or []
        if not backups:
            self.message.emit("error", str(damaged))
            return

        def restore() -> None:
            self.runner.db("copy the backup", lambda: copy_backup(backups[0], target)) \
                .on_success(lambda copy: self._opened_copy(copy, backups[0])).start()

        self.offer.emit("error", str(damaged), "Open a copy of the newest backup", restore)

    def _opened_copy(self, copy: Path, backup: Path) -> None:
        self.message.emit("warning", f"Working on {copy.name}, a copy of the backup "
                          f"{backup.name}; the damaged file was left as it was. Cases "
                          "analysed since that backup are not in it.")
        self.open_store(copy)

    # -- the model ---------------------------------------------------------------------------
    def load_workbench(self, model_id: str | None = None) -> Task | None:
        """Load the active (or named) model behind the window; None when there is no model."""
        from app.casework import load_workbench
        from models.registry import ModelRegistry

        if model_id is None and ModelRegistry(self.data_dir).active_id() is None:
            self.workbench = None
            self.workbench_changed.emit(None)
            return None

        return self.runner.run("load model", lambda ctx: load_workbench(self.data_dir, model_id)) \
            .on_success(self.use_workbench).start()

    def use_workbench(self, bench) -> None:
        """Make ``bench`` the loaded model (a fresh load, or the same model with a new
        policy), tell every view, and file it in the history."""
        settle_heap()
        self.workbench = bench
        self.workbench_changed.emit(bench)
        if self.store is not None:  # else opening the store registers it
            self._register(bench)

    def _register(self, bench) -> None:
        from app.casework import register_in_store

        store = self.store
        self.runner.db("register model", lambda: register_in_store(store, bench)).start()

    # -- the LLM -----------------------------------------------------------------------------
    def llm_backend(self):
        """The backend the settings name, made once and kept (call it on a worker thread:
        the embedded model takes seconds to load)."""
        from models.llm.factory import make_backend

        s = self.settings
        key = (s.llm_backend, s.llm_model, s.llm_base_url)
        with self._backend_lock:
            if self._backend is None or self._backend_key != key:
                self._backend = make_backend(s.llm_backend, s.llm_model or None,
                                             s.llm_base_url or None, api_key(self.config_dir))
                self._backend_key = key
            return self._backend

    def llm_choice(self):
        """The LLM the settings name, for ``app.pipeline`` (made on first use)."""
        from app.pipeline import LLMChoice

        s = self.settings
        return LLMChoice(self.llm_backend, s.llm_backend, s.llm_model,
                         s.llm_base_url or None, s.allow_remote)

    def warm_up(self) -> Task:
        """Load the LLM's weights and run one small case through the pipeline in the
        background (imports, the first model calls), so the first escalated case and the
        first explanation do not wait for them."""

        def warm(ctx) -> None:
            bench = self.workbench
            if bench is not None:
                from app import pipeline
                from models.types import CaseInput

                # The first explanation imports shap and warms torch's kernels (about a
                # second); pay it here, before a reviewer waits.
                pipeline.run_case(bench, CaseInput("warming up the explainer"),
                                  steps=pipeline.Steps(store=False), cancel=ctx.cancel)
            if self.settings.llm_backend == "embedded":
                self.llm_backend().load_weights()  # seconds: not when the first case waits

        return self.runner.run("warm up", warm).on_success(lambda _none: settle_heap()).start()

    def close(self) -> None:
        self.runner.cancel_all()
        self.runner.wait(10000)
        if self.store is not None:
            self.store.close()


def _open_or_damaged(target):
    """The opened store, or the StoreCorrupt error itself (so the window can offer a backup
    instead of only reporting it)."""
    from app.store import StoreCorrupt, open_store

    try:
        return open_store(target)
    except StoreCorrupt as damaged:
        return damaged


def copy_backup(backup: Path, damaged: Path | str) -> Path:
    """Copy a backup beside the damaged file under a new name (never over it) and return
    the copy; written to a scratch name first, so a failed copy leaves nothing."""
    import shutil
    import time

    folder = Path(damaged).parent
    copy = folder / f"casewise-restored-{time.strftime('%Y%m%d-%H%M%S')}.db"
    scratch = folder / f".{copy.name}.partial"
    try:
        shutil.copy2(backup, scratch)
        scratch.replace(copy)
    finally:
        scratch.unlink(missing_ok=True)
    return copy
