"""Store faults a user can act on, and the translation of database errors into them.

Callers catch ``StoreError`` (a ``CasewiseError``, so the CLI prints it as one line); the
subclasses let the GUI react to the common cases (retry when locked, pick another folder when
read-only) without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from models.errors import CasewiseError


class StoreError(CasewiseError):
    """The case history cannot do what was asked; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process held the database past the busy timeout."""


class StoreReadOnly(StoreError):
    """The database file, or the folder it lives in, cannot be written."""


class StoreCorrupt(StoreError):
    """The file is not a Casewise database, or it is damaged; it was left as it was.

    ``backups`` lists the backups of the file, newest first (empty when there are none, or
    the database is not a file), so the app can offer to open one instead.
    """

    def __init__(self, message: str, backups: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.backups: list[Path] = list(backups)


class StoreVersionError(StoreError):
    """The database was written by a newer Casewise than this one."""


class CaseNotFound(StoreError):
    """No case with that id."""


class InvalidRecord(StoreError):
    """A prediction, attribution, decision or opinion lacks what the store needs."""


class InvalidReview(StoreError):
    """A review breaks the review rules (an override needs a label and a reason, ...)."""


class AppendOnlyViolation(StoreError):
    """Something tried to change or delete a record that may only be appended."""


def _sqlite_code(exc: BaseException) -> str:
    """The SQLite extended error name (Python 3.11+), or '' for other drivers."""
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlite_errorname", "") or ""


def translate(exc: BaseException, location: str) -> StoreError:
    """Turn a driver error into the StoreError a user can act on; ``location`` names the file."""
    code = _sqlite_code(exc)
    detail = str(getattr(exc, "orig", exc))
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLocked(
            f"Another Casewise is using the database {location}; close it and retry.")
    if code.startswith("SQLITE_READONLY"):
        return StoreReadOnly(
            f"The database {location} is read-only ({detail}). Make the file and its folder "
            "writable, or choose another data folder.")
    if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return StoreCorrupt(
            f"The database {location} is damaged ({detail}). Restore it from a backup.")
    if code == "SQLITE_CONSTRAINT_TRIGGER" and "append-only" in detail:
        return AppendOnlyViolation(f"Refused by the database {location}: {detail}.")
    if code == "SQLITE_FULL":
        return StoreError(f"The disk holding {location} is full; free some space and retry.")
    if code.startswith("SQLITE_CANTOPEN"):
        return StoreReadOnly(
            f"Cannot open the database {location} ({detail}). Check that the file and its "
            "folder exist and can be written.")
    return StoreError(f"The database {location} failed: {detail}")
