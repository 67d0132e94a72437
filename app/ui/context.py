"""``AppContext``: what every window and panel shares — settings, the task runner, the case
history, who is signed in to it and the loaded model — with signals for when any of them
changes.

The store (and the account session, which reads and writes it) is only ever used on the
runner's database worker (``runner.db``, ``account_task``); the model is loaded on the compute
pool behind the window, which is shown at once.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

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
    offers = Signal(str, str, object)  # level, text, [(label, action), (label, action)]
    account_changed = Signal(object)  # the signed-in app.store.Account, or None
    # models.guarantee_monitor.GuaranteeWatch of the loaded policy, after each registration
    guarantee_changed = Signal(object)

    def __init__(self, settings: Settings, runner: TaskRunner | None = None,
                 config_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.config_dir = config_dir
        self.runner = runner or TaskRunner(parent=self)
        self.runner.failed.connect(lambda name, text: self.message.emit("error", text))
        self.store = None
        # One AccountSession per open history (app.accounts.service): who is signed in and
        # the signing rules. Made when the history opens; used on the database worker only.
        self.session = None
        self.has_users: bool | None = None  # None until the history is open
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
        if self.session is not None:  # the idle limit applies from the next signing on
            self.session.idle = timedelta(minutes=settings.signing_idle_minutes)
        self.settings_changed.emit(settings)

    # -- the case history --------------------------------------------------------------------
    def open_store(self, location: str | Path | None = None) -> Task:
        """Open (and migrate) the case history on the database worker (importing the store
        takes ~0.4 s of SQLAlchemy and Alembic: not on the GUI thread either)."""
        from app.store_location import history_location

        target = location or history_location(None, self.settings.database_url,
                                              self.data_dir, self.config_dir)

        def opened(found) -> None:
            from app.accounts.service import AccountSession  # loaded by now, on the worker
            from app.store import StoreCorrupt, StoreUnavailable

            if isinstance(found, StoreCorrupt):
                self._offer_backup(found, target)
                return
            if isinstance(found, StoreUnavailable):
                self._offer_retry(found, target)
                return
            store, self.has_users, anchor_problem = found
            if anchor_problem:
                self.message.emit("warning", anchor_problem)
            self._close_previous_store()
            self.store = store
            self.store.actor = self.settings.reviewer_name()
            # A new history: nobody is signed in to it.
            self.session = AccountSession(store,
                                          idle_minutes=self.settings.signing_idle_minutes)
            self.account_changed.emit(None)
            if self.workbench is not None:  # the model loaded first: file it now
                self._register(self.workbench)
            self.store_ready.emit(store)

        return self.runner.db("open case history", lambda: _open_or_damaged(target)) \
            .on_success(opened).start()

    def _offer_retry(self, error, target) -> None:
        """A team database that cannot be reached (server down, wrong password): the window
        stays usable — cases are analysed, not filed — and offers to try again or to work on
        this computer's own history meanwhile."""
        from app.paths import DB_FILE

        self._close_previous_store()  # the settings moved away from it
        local = self.data_dir / DB_FILE
        self.offers.emit("error", f"{error} Until a history is open, cases are analysed but "
                         "not filed.", [("Retry", lambda: self.open_store(target)),
                                        ("Use the local history", lambda: self.open_store(local))])

    def _close_previous_store(self) -> None:
        """Close the history being replaced (its connections, its pool) on the database
        worker, where its connections were made."""
        previous, self.store = self.store, None
        if previous is not None:
            self.runner.db("close the previous history", previous.close).start()

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

    # -- who is signed in ---------------------------------------------------------------------
    def account_task(self, name: str, work: Callable[[Any], Any], *,
                     owner: QObject | None = None) -> Task:
        """``work(session)`` on the database worker, not started. An ``AccountError`` (wrong
        password, locked, not permitted) comes back as the task's value rather than as a
        failure: the dialog that asked shows it where the user is typing, and it is no fault
        of the app for the window's message bar. Afterwards every view hears who is signed
        in (a signing or a sign-in may have changed it)."""
        session = self.session

        def run() -> Any:
            from app.accounts.errors import AccountError

            try:
                if session is None:
                    raise AccountError("The case history is not open yet; try again in a "
                                       "moment.")
                return work(session)
            except AccountError as refused:
                return refused
            finally:
                if session is not None:
                    self._account_settled(session)

        task = self.runner.db(name, run, owner=owner)
        # Connected before any caller's callbacks: views hear who is signed in now, then the
        # caller gets its answer (a failed review may still have signed someone in).
        task.signals.succeeded.connect(self._announce_account)
        task.signals.failed.connect(self._announce_account)
        return task

    def _account_settled(self, session) -> None:
        """On the database worker: the history's events name the signed-in user."""
        self.has_users = session.store.has_users()
        user = session.user
        session.store.actor = user.login if user is not None else self.settings.reviewer_name()

    def _announce_account(self, *_outcome: Any) -> None:
        self.account_changed.emit(None if self.session is None else self.session.user)

    def if_admin(self, what: str, then: Callable[[], Any], refused: Callable[[str], None], *,
                 owner: QObject | None = None) -> Task:
        """``then()`` if the signed-in user is an admin, or the history has no users yet
        (nobody to ask); else ``refused(message)``, the message naming who may."""
        def answered(outcome) -> None:
            from app.accounts.errors import AccountError

            if isinstance(outcome, AccountError):
                refused(str(outcome))
            else:
                then()

        return self.account_task(
            "check role", lambda session: session.require_admin_if_accounts(what),
            owner=owner).on_success(answered).start()

    def sign_out(self) -> Task:
        return self.account_task("sign out", lambda session: session.sign_out()).start()

    def actor_name(self) -> str:
        """Who the history's events name: the signed-in user, else the settings' name."""
        user = None if self.session is None else self.session.user
        return user.login if user is not None else self.settings.reviewer_name()

    # -- the model ---------------------------------------------------------------------------
    def load_workbench(self, model_id: str | None = None) -> Task | None:
        """Load the active (or named) model behind the window; None when there is no model."""
        from app.casework import load_workbench, model_registry

        if model_id is None and model_registry(self.data_dir).active_id() is None:
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
        problem = getattr(bench, "explainer_problem", None)
        if problem:  # the model is used; its instant explainer is not, and the user is told
            self.message.emit("warning", f"The instant explainer is not used: {problem}")
        if self.store is not None:  # else opening the store registers it
            self._register(bench)

    def _register(self, bench) -> None:
        from app.pipeline import register_model

        store = self.store
        # Also reads the guarantee monitor: while it raises the alarm, every case is escalated
        # (the reason says so on each).
        self.runner.db("register model", lambda: register_model(store, bench)) \
            .on_success(lambda _none: self._tell_guarantee(bench)).start()

    def _tell_guarantee(self, bench) -> None:
        """A broken guarantee is said in the message bar and stands in the window's banner,
        not only in each case's reasons."""
        if bench is not self.workbench:
            return
        watch = getattr(bench, "guarantee", None)
        self.guarantee_changed.emit(watch)
        if watch is not None and watch.alarm:
            self.message.emit("error", watch.summary())

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
        """Stop the work and close the history (signing its last checkpoint); twice is
        harmless (the window closes it, and so may whoever made the context)."""
        self.runner.cancel_all()
        self.runner.wait(10000)
        store, self.store, self.session = self.store, None, None
        if store is not None:
            store.close()


def _open_or_damaged(target):
    """(the opened store, whether it has users, why its checkpoints are not signed or None),
    or the StoreCorrupt error itself (so the window can offer a backup instead of only
    reporting it)."""
    from app.accounts.errors import AccountError
    from app.accounts.installation import installation_key
    from app.store import StoreCorrupt, StoreError, StoreUnavailable, open_store

    try:
        store = open_store(target)
    except (StoreCorrupt, StoreUnavailable) as refused:  # the window offers a way on
        return refused
    problem = None
    try:
        # The installation's key (one per installation, in the app's configuration folder;
        # it signs models too) signs checkpoints of the audit chain at close and before
        # exports: without them a rewrite of the whole chain could go unseen.
        store.set_anchor(installation_key())
    except (AccountError, StoreError) as exc:  # the history still opens for reading
        problem = f"Checkpoints of the audit trail are not signed: {exc}"
    return store, store.has_users(), problem


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
        scratch.chmod(0o600)  # backups are read-only; the copy is the working history
        scratch.replace(copy)
    finally:
        scratch.unlink(missing_ok=True)
    return copy
