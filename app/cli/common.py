"""What every terminal command shares: the settings, the data folder, progress on the terminal,
loading the model, the common options and filing results in the case history.

The command modules (``*_cmds.py``) import this module and the core, never each other, so
there is no import cycle and each command group can be read (or rewritten) on its own.

Filing: ``predict``, ``explain`` and ``ask`` store the case and every result; ``train``,
``calibrate`` and ``models --activate`` log the model and policy events. The result is always
printed first: when the store cannot take it (locked by another process, read-only, disk full,
damaged), the command says so and how to retry, and exits with ``STORE_FAILED`` — the answer
is not lost, re-running the same command stores it (cases are keyed by their text).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.casework import (
    model_identity,  # also what the desktop app registers a model with
    model_registry,
)
from app.cli.terminal import unescaped
from app.settings import Settings, load_settings
from models.progress import Progress

if TYPE_CHECKING:  # for the annotations only: importing them loads torch and SQLAlchemy
    from sqlalchemy.engine import URL

    from app.casework import Workbench
    from app.pipeline import CaseResult
    from app.store import CaseRepository
    from models.classifier import Classifier
    from models.registry import ModelRegistry

# Exit codes (README, "Exit codes"): 0 done; 1 the audit chain is broken; 2 bad input or a
# problem the message names; 3 the answer was printed but NOT stored; 4 some of the work
# failed (cases of a batch, or the LLM did not answer); 130 cancelled.
STORE_FAILED = 3
PARTLY_FAILED = 4


# -- settings: the window's, with this command's flags laid over them ------------------------

def settings_flags(parser: argparse.ArgumentParser, **flags: str) -> None:
    """Declare which options of ``parser`` override which setting (``field="dest"``).

    Declared per command because one flag name means different things in different commands:
    ``ask --model`` is the LLM but ``predict --model`` the classifier, ``review --reviewer``
    signs but ``history --reviewer`` filters. Such options default to None ("not given")."""
    parser.set_defaults(settings_flags=flags)


def cli_settings(args: argparse.Namespace) -> Settings:
    """The settings the window saved (under ``$CASEWISE_HOME/config`` when it is set), with
    the options this command declared and the user gave on the command line laid over them."""
    resolved = getattr(args, "settings", None)
    if isinstance(resolved, Settings):
        return resolved
    given = {field: getattr(args, dest) for field, dest in _flags(args).items()
             if getattr(args, dest, None) is not None}
    return replace(load_settings(), **given)


def with_settings(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``args`` carrying its resolved settings (``args.settings``) and with every
    declared option that was not given filled in from them, so a command body reads its
    options the same whether they came from the command line or the settings. ``main`` does
    this once per run; doing it again is free."""
    if isinstance(getattr(args, "settings", None), Settings):
        return args
    settings = cli_settings(args)
    filled = {dest: _option_value(settings, field) for field, dest in _flags(args).items()}
    return argparse.Namespace(**{**vars(args), **filled, "settings": settings})


def data_path(args: argparse.Namespace) -> Path:
    """The data folder: models, the default case history, reports. The window's setting, so a
    folder moved there moves the terminal's history with it."""
    return cli_settings(args).data_path()


def audit_share(args: argparse.Namespace) -> float:
    """The settings' share of AUTO decisions drawn for the audit sample (as the window's)."""
    return cli_settings(args).audit_share


def llm_api_key(args: argparse.Namespace) -> str | None:
    """What the window uses: the environment, then the saved key file (never an argument:
    arguments are seen in the process list and kept in shell histories)."""
    from app.settings import api_key

    return api_key()


def llm_choice(args: argparse.Namespace, backend: str, model: str | None,
               max_tokens: int | None = None):
    """The LLM a command names, with the URL, allow-remote and timeout it was given (or the
    settings gave it), made when first used: ``ask`` and ``score --llm`` ask the same one."""
    from app.pipeline import LLMChoice
    from models.llm.factory import make_backend

    return LLMChoice(lambda: make_backend(backend, model, args.base_url, llm_api_key(args),
                                          args.timeout),
                     backend, model or "", args.base_url, args.allow_remote, max_tokens)


def add_llm_server_options(parser: argparse.ArgumentParser) -> None:
    """The options ``ask`` and ``score`` share for reaching an LLM (default: the settings')."""
    parser.add_argument("--base-url", help="openai: the server's URL, e.g. "
                                           "http://localhost:11434/v1 (default: the settings')")
    # No --api-key: a key on the command line lands in the shell history and the process
    # list. It comes from $CASEWISE_LLM_API_KEY (or $OPENAI_API_KEY), else the 0600 key file
    # the window's settings save.
    parser.add_argument("--allow-remote", action=argparse.BooleanOptionalAction,
                        help="allow sending a de-identified copy to a non-loopback server "
                             "(default: the settings', off unless changed)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="server timeout in seconds")


def _flags(args: argparse.Namespace) -> dict[str, str]:
    return getattr(args, "settings_flags", None) or {}


def _option_value(settings: Settings, field: str) -> Any:
    if field == "reviewer":  # "" in the settings means the login name
        return settings.reviewer_name()
    value = getattr(settings, field)
    return None if value == "" else value  # "" in the settings means "none given"


# -- the model -------------------------------------------------------------------------------

def registry(args: argparse.Namespace) -> ModelRegistry:
    """The data folder's models, signed with and checked against this installation's key
    (``app.casework.model_registry``): training and ``--activate`` sign, loads check."""
    return model_registry(data_path(args))


def load_cli_classifier(args: argparse.Namespace, model_id: str | None) -> Classifier:
    from app.casework import load_classifier

    return load_classifier(data_path(args), model_id)


def load_cli_workbench(args: argparse.Namespace, model_id: str | None) -> Workbench:
    """The classifier with its escalation policy, as the desktop app and ``score`` load it."""
    from app.casework import load_workbench

    return load_workbench(data_path(args), model_id)


# -- progress on the terminal ----------------------------------------------------------------

class TerminalProgress:
    """Prints stage changes as lines and the long stages as a bar with time left (tqdm)."""

    def __init__(self, stream=None) -> None:
        # The stream of now (not of import time: a test may have replaced it since), and the
        # real one under app.cli.terminal's escaping: the bar's CRs are its own.
        self.stream = unescaped(stream or sys.stderr)
        self.stage: str | None = None
        self.bar = None

    def __call__(self, progress: Progress) -> None:
        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            if progress.total <= 1:
                print(f"{progress.stage} ...", file=self.stream, flush=True)
            else:
                from tqdm import tqdm

                self.bar = tqdm(total=progress.total, desc=progress.stage, file=self.stream,
                                unit="step", dynamic_ncols=True)
        if self.bar is not None:
            self.bar.total = progress.total
            self.bar.update(progress.done - self.bar.n)
            if progress.message:
                self.bar.set_postfix_str(progress.message, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- options shared by several commands ------------------------------------------------------

def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db``: the case history to use (``open_cli_store`` reads it)."""
    parser.add_argument("--db", help="an SQLAlchemy URL or file (default: casewise.db in the "
                                     "data directory)")


def add_record_options(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument("--no-store", action="store_true",
                        help="do not file this in the case history")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The case-history filters, shared by ``history`` and ``export --query``."""
    parser.add_argument("--search", help="full-text search over the case text (words, prefix*, "
                                         '"a phrase")')
    parser.add_argument("--label", help="only cases the model gave this label")
    parser.add_argument("--escalated", action="store_true", help="only escalated cases")
    reviewed = parser.add_mutually_exclusive_group()
    reviewed.add_argument("--reviewed", action="store_true",
                          help="only cases whose latest review accepts or overrides")
    reviewed.add_argument("--unreviewed", action="store_true",
                          help="only cases not reviewed yet (or deferred)")
    parser.add_argument("--decision", choices=("accept", "override", "defer"),
                        help="only cases whose latest review made this decision")
    parser.add_argument("--reviewer", help="only cases whose latest review this person signed")
    parser.add_argument("--model", help="only cases the model with this id decided")
    parser.add_argument("--from", dest="date_from", metavar="DATE",
                        help="only cases created on or after this day (YYYY-MM-DD, UTC)")
    parser.add_argument("--to", dest="date_to", metavar="DATE",
                        help="only cases created on or before this day (YYYY-MM-DD, UTC)")


def case_filters(args: argparse.Namespace) -> dict:
    """The ``find_cases`` filters named on the command line."""
    reviewed = True if args.reviewed else False if args.unreviewed else None
    return {"search": args.search, "label": args.label,
            "escalated": True if args.escalated else None, "reviewed": reviewed,
            "decision": args.decision, "reviewer": args.reviewer, "model_id": args.model,
            "date_from": args.date_from, "date_to": args.date_to}


# -- filing in the case history --------------------------------------------------------------

def open_cli_store(args: argparse.Namespace, *, anchor: bool = True,
                   read_only_ok: bool = False,
                   location: str | Path | None = None) -> CaseRepository:
    """``--db``, else ``casewise.db`` in the data folder; audit events of no signed-in user
    name the OS login (or the settings' name), as the window's do. Checkpoints of the chain
    are signed with this installation's key (not with ``anchor=False``: a verify writes
    nothing). ``read_only_ok``: a history that cannot be written is opened to read."""
    from app.accounts.installation import installation_key
    from app.store import StoreReadOnly, open_store

    location = location or chosen_history(args)
    actor = getattr(args, "acting_user", None) or cli_settings(args).reviewer_name()
    try:
        store = open_store(location, actor=actor)
    except StoreReadOnly as exc:
        if not read_only_ok or "://" in str(location):
            raise
        # Reading needs no write access: lists, verify and exports work on such a file.
        print(f"note: {exc} Reading it read-only.", file=sys.stderr)
        return open_store(location, actor=actor, read_only=True)
    try:  # this installation signs checkpoints of the chain (at close, every N events)
        if anchor:
            store.set_anchor(installation_key())
    except BaseException:
        store.close()
        raise
    return store


def chosen_history(args: argparse.Namespace) -> Path | URL:
    """The history this command works on: ``--db``, else the settings' team database, else
    ``casewise.db`` in the data folder. A database URL on the command line must not hold a
    password (it would show in the process list): it comes from the key store."""
    from app.store_location import history_location

    settings = cli_settings(args)
    return history_location(getattr(args, "db", None), settings.database_url,
                            settings.data_path())


def histories_in_play(args: argparse.Namespace) -> list[Path | URL]:
    """The data folder's own history (it governs the data folder's models), and the one
    ``--db`` (or the settings' database URL) names when that is another."""
    from app.store import DB_FILE

    own = data_path(args) / DB_FILE
    chosen = chosen_history(args)
    return [own] if _same_file(chosen, own) else [own, chosen]


def _same_file(location: str | Path, own: Path) -> bool:
    if "://" in str(location):
        return False
    try:
        return Path(location).expanduser().resolve() == own.expanduser().resolve()
    except OSError:
        return False


def recorded_weights(args: argparse.Namespace, model_id: str) -> list[str]:
    """The weights' SHA-256 the histories in play recorded for ``model_id`` (read even with
    ``--no-store``: the check is not the record)."""
    from app.store import StoreError

    found = []
    for location in histories_in_play(args):
        if "://" not in str(location) and not Path(location).exists():
            continue  # no history there: nothing recorded to hold the model to
        try:
            store = open_cli_store(args, anchor=False, read_only_ok=True, location=location)
        except StoreError as exc:  # a history that exists but cannot be read: no guessing
            raise StoreError(f"Cannot check the model against {location}: {exc}") from exc
        try:
            found.append(store.recorded_weights(model_id))
        finally:
            store.close()
    return [weights for weights in found if weights]


def record(args: argparse.Namespace, what: str, work: Callable[[Any], Any]) -> int:
    """Run ``work(store)`` unless ``--no-store``; 0, or STORE_FAILED with a clear message."""
    from app.store import StoreError

    if getattr(args, "no_store", False):
        return 0
    try:
        store = open_cli_store(args)
    except StoreError as exc:
        return _not_stored(what, exc)
    try:
        work(store)
    except StoreError as exc:
        return _not_stored(what, exc)
    finally:
        store.close()
    return 0


def _not_stored(what: str, exc: Exception) -> int:
    print(f"warning: {what} shown above was NOT stored in the case history: {exc}\n"
          "Nothing was half-written; run the same command again to store it.", file=sys.stderr)
    return STORE_FAILED


@dataclass
class CaseStore:
    """The history a case command files into: ``None`` with ``--no-store``, or when it could
    not be opened (``error`` says why; the answer is still computed and printed)."""

    store: CaseRepository | None = None
    error: Exception | None = None

    def report(self, what: str, results: Sequence[CaseResult]) -> int:
        """0, or STORE_FAILED with the message, after the answer was printed."""
        error = self.error or next((r.store_error for r in results if r.store_error), None)
        return _not_stored(what, error) if error is not None else 0


@contextmanager
def case_store(args: argparse.Namespace, bench: Workbench) -> Iterator[CaseStore]:
    """Open the history for a case command and register the model its answers cite."""
    if getattr(args, "no_store", False):  # before importing the store (alembic: ~1 s)
        _watch_without_storing(args, bench)
        yield CaseStore()
        return
    from app.pipeline import register_model
    from app.store import StoreError

    try:
        store = open_cli_store(args)
    except StoreError as exc:
        yield CaseStore(error=exc)
        return
    try:
        try:
            register_model(store, bench)
        except StoreError as exc:
            yield CaseStore(error=exc)
            return
        yield CaseStore(store)
    finally:
        store.close()


def _watch_without_storing(args: argparse.Namespace, bench: Workbench) -> None:
    """Not filing a case is no way around a broken guarantee: the history's monitor is read
    (read-only, nothing written) whenever the policy certifies anything and a history exists."""

    location = chosen_history(args)
    if bench.policy is None or bench.policy.threshold is None or (
            "://" not in str(location) and not Path(location).exists()):
        return
    from app.pipeline import watch_guarantee

    store = open_cli_store(args, anchor=False, read_only_ok=True, location=location)
    try:
        watch_guarantee(store, bench, record=False)
    finally:
        store.close()


def log_model_activated(args: argparse.Namespace, model_dir: Path, model_id: str) -> int:
    weights, card = model_identity(model_dir)
    return record(args, "the activation",
                  lambda store: store.record_model_activated(model_id, weights, card))


def log_policy_refitted(args: argparse.Namespace, policy, source: str) -> int:
    from app.policy_refit import refit_details

    details = refit_details(policy, source)
    return record(args, "the new policy",
                  lambda store: store.record_policy_refitted(policy.model_id, policy.policy_id,
                                                             details))
