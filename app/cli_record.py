"""Filing what the terminal commands do in the case history and its audit trail.

``predict``, ``explain`` and ``ask`` store the case and every result; ``train``, ``calibrate``
and ``models --activate`` log the model and policy events. The result is always printed first:
when the store cannot take it (locked by another process, read-only, disk full, damaged), the
command says so and how to retry, and exits with ``STORE_FAILED`` — the answer is not lost,
re-running the same command stores it (cases are keyed by their text).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.casework import model_identity  # also what the desktop app registers a model with
from app.paths import data_dir

STORE_FAILED = 3


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db``: the case history to use (``open_cli_store`` reads it)."""
    parser.add_argument("--db", help="an SQLAlchemy URL or file (default: casewise.db in the "
                                     "data directory)")


def add_record_options(parser: argparse.ArgumentParser) -> None:
    add_db_option(parser)
    parser.add_argument("--no-store", action="store_true",
                        help="do not file this in the case history")


def open_cli_store(args: argparse.Namespace):
    from app.store import DB_FILE, open_store

    return open_store(getattr(args, "db", None) or (data_dir() / DB_FILE))


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


def store_cases(store, bench, analyses, source: str) -> list[int]:
    """File analysed cases (with prediction and decision) of ``bench``'s model; the ids."""
    from app.casework import register_in_store, store_analysis

    register_in_store(store, bench)
    return [store_analysis(store, a, source)[0] for a in analyses]


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
