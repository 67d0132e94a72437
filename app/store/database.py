"""Opening the case history: check the file, refuse what is not ours, migrate, hand out the
repository.

Everything that can refuse a file runs before anything writes to it, over a read-only SQLite
connection: a damaged or foreign file is reported, never "repaired" by the open.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from app.store.engine import DEFAULT_BUSY_TIMEOUT, make_engine
from app.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreVersionError,
    translate,
)
from app.store.migrate import VERSION_TABLE, current_revision, head_revision, known_revisions
from app.store.migrate import upgrade as upgrade_to
from app.store.repository import CaseRepository

SQLITE_HEADER = b"SQLite format 3\x00"
DB_FILE = "casewise.db"  # the name the app uses inside its data directory
NOT_MODIFIED = "The file was not modified"


def open_store(path_or_url: str | Path, *, actor: str | None = None,
               busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> CaseRepository:
    """Open (creating if needed) the case history and upgrade its schema to the current one.

    ``path_or_url`` is a file path (SQLite) or an SQLAlchemy URL. ``actor`` is written on
    audit events (default: the login name); ``busy_timeout`` is how long, in seconds, to
    wait for another process that holds the database.
    """
    url, path = _resolve(path_or_url)
    location = str(path) if path else url.render_as_string(hide_password=True)
    if path is not None:
        _check_file(path, busy_timeout)
    engine = make_engine(url, busy_timeout)
    try:
        _migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise translate(exc, location) from exc
    except BaseException:
        engine.dispose()
        raise
    return CaseRepository(engine, location, actor)


def _resolve(path_or_url: str | Path) -> tuple[URL, Path | None]:
    """The URL to connect to, and the database file when it is a plain SQLite file."""
    if isinstance(path_or_url, Path) or "://" not in path_or_url:
        path = Path(path_or_url).expanduser().resolve()
        return URL.create("sqlite", database=str(path)), path
    url = make_url(path_or_url)
    database = url.database or ""
    plain_file = (url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
                  and not database.startswith("file:"))
    return url, Path(database).expanduser().resolve() if plain_file else None


def _migrate(engine: Engine) -> None:
    with engine.connect() as connection:
        current = current_revision(connection)
    if current is not None and current not in known_revisions():
        raise StoreVersionError(f"The case history was written by a newer Casewise (schema "
                                f"{current}; this one knows up to {head_revision()}). "
                                "Update Casewise.")
    if current != head_revision():
        upgrade_to(engine)


def _check_file(path: Path, busy_timeout: float) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreReadOnly(f"Cannot create the folder {folder} for the case history "
                            f"({exc.strerror or exc}). Choose a folder you can write to.") from exc
    if path.exists():
        _check_existing(path, busy_timeout)
    # WAL mode writes -wal and -shm files beside the database, so the folder must be writable.
    for target, what in ((path, "file"), (folder, "folder")):
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreReadOnly(
                f"The case history {path} cannot be written: its {what} {target} is "
                "read-only. Make it writable, or choose another data folder.")


def _check_existing(path: Path, busy_timeout: float) -> None:
    if path.is_dir():
        raise StoreError(f"{path} is a folder, not a case history file.")
    if not os.access(path, os.R_OK):
        raise StoreReadOnly(f"The case history {path} cannot be read; check its permissions.")
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise StoreCorrupt(f"{path} is not a Casewise case history (not an SQLite database). "
                           f"{NOT_MODIFIED}; move it away or choose another data folder.")
    if header:
        _inspect_read_only(path, busy_timeout)


def _inspect_read_only(path: Path, busy_timeout: float) -> None:
    """Integrity, ownership and schema version, read through a read-only connection.

    quick_check reads every page, which is the price of never writing into a damaged file.
    With no -wal, -shm or -journal beside the file no other process has it open, and it is
    opened as immutable: a read-only connection to a WAL database would otherwise create the
    -wal and -shm files and, unable to checkpoint, leave them behind. (A writer arriving
    during the check writes to its own new -wal, not to the pages being read.)
    """
    in_use = any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal"))
    query = "mode=ro" if in_use else "mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, timeout=busy_timeout)
        try:
            problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
            tables = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = (connection.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
                        if VERSION_TABLE in tables else None)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise _read_failure(path, exc) from exc
    if problems != ["ok"]:
        raise StoreCorrupt(f"The case history {path} is damaged ({'; '.join(problems[:3])}). "
                           f"{NOT_MODIFIED}; restore it from a backup.")
    _check_ownership(path, tables, revision[0] if revision else None)


def _read_failure(path: Path, exc: sqlite3.Error) -> StoreError:
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreLocked(f"Another Casewise is using the database {path}; close it and retry.")
    if code.startswith("SQLITE_READONLY"):  # a hot journal that a read-only reader cannot undo
        return StoreReadOnly(f"The case history {path} was left mid-write by a crash and "
                             "needs write access to recover; make it writable and retry.")
    if code.startswith("SQLITE_CANTOPEN"):
        return StoreReadOnly(f"Cannot open the case history {path} ({exc}); check the "
                             "permissions of the file and its folder.")
    return StoreCorrupt(f"The case history {path} cannot be read as a database ({exc}). "
                        f"{NOT_MODIFIED}; restore it from a backup or move it away.")


def _check_ownership(path: Path, tables: set[str], revision: str | None) -> None:
    ours = tables - {"sqlite_sequence"}
    if ours and revision is None:
        raise StoreCorrupt(f"{path} is an SQLite database but not a Casewise case history. "
                           f"{NOT_MODIFIED}; choose another file.")
    if revision is not None and revision not in known_revisions():
        raise StoreVersionError(
            f"The case history {path} was written by a newer Casewise (schema {revision}; "
            f"this one knows up to {head_revision()}). Update Casewise. {NOT_MODIFIED}.")
