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


class StoreUnavailable(StoreError):
    """The database server cannot be reached, refused the login, or dropped the connection;
    nothing was stored by the step that failed."""


class StoreTimeout(StoreError):
    """A statement ran past the server's statement timeout and was cancelled."""


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


def _sqlstate(exc: BaseException) -> str:
    """PostgreSQL's SQLSTATE (psycopg), or '' for other drivers and for connection failures."""
    return getattr(getattr(exc, "orig", exc), "sqlstate", None) or ""


NUL_REFUSED = "cannot contain NUL"
DISCONNECTED = ("connection refused", "could not connect", "server closed the connection",
                "terminating connection", "connection is lost", "connection timeout expired",
                "consuming input failed", "the connection is closed", "no route to host",
                "could not translate host name", "connection to server")


def _translate_postgresql(exc: BaseException, location: str, detail: str) -> StoreError | None:
    state, lowered = _sqlstate(exc), detail.lower()
    if state in ("28P01", "28000") or "password authentication failed" in lowered \
            or "no password supplied" in lowered:
        return StoreUnavailable(
            f"The database server refused the login for {location} ({detail.strip()}). "
            "Check the user in the database URL and the password in Settings > Database "
            "(or `casewise db password`).")
    if state == "3D000":
        return StoreUnavailable(f"The database of {location} does not exist on the server "
                                f"({detail.strip()}). Create it first (README: a team's "
                                "history), or correct the URL.")
    if state == "55P03":
        return StoreLocked(f"Another Casewise is writing to {location} and did not finish "
                           "within the busy timeout; retry.")
    if state == "57014":
        return StoreTimeout(f"The database {location} cancelled a statement that ran past its "
                            "statement timeout; nothing was stored. Retry, or ask the database "
                            "administrator about the server's load.")
    if state == "P0001" and "append-only" in detail:
        return AppendOnlyViolation(f"Refused by the database {location}: {detail.strip()}.")
    if state == "42501":
        return StoreReadOnly(f"The database user may not do this on {location} ({detail.strip()})."
                             " Ask the administrator for the grants in the README's team setup.")
    if state == "53100":
        return StoreError(f"The database server's disk is full ({location}); nothing was "
                          "stored. Ask the administrator to free space, then retry.")
    if NUL_REFUSED in detail:
        return InvalidRecord("The text contains a NUL character (\\x00), which a PostgreSQL "
                             "history cannot store; nothing was stored. Remove it (it is not "
                             "visible text) and retry.")
    if state.startswith("08") or state in ("57P01", "57P02", "57P03") \
            or getattr(exc, "connection_invalidated", False) \
            or any(words in lowered for words in DISCONNECTED):
        return StoreUnavailable(
            f"The database server of {location} cannot be reached or dropped the connection "
            f"({detail.strip().splitlines()[0] if detail.strip() else 'no answer'}); nothing "
            "was stored by this step. Check the server and the network, then retry.")
    return None


def translate(exc: BaseException, location: str) -> StoreError:
    """Turn a driver error into the StoreError a user can act on; ``location`` names the file
    (or the database URL, without its password)."""
    code = _sqlite_code(exc)
    detail = str(getattr(exc, "orig", exc))
    if not code:
        found = _translate_postgresql(exc, location, detail)
        if found is not None:
            return found
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
