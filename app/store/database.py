"""Opening the case history: check the file, refuse what is not ours, migrate, hand out the
repository.

Everything that can refuse a file runs before anything writes to it, over a read-only SQLite
connection: a damaged or foreign file is reported, never "repaired" by the open.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from app.store.backups import backup_due, backup_store, is_backup, offer_backups
from app.store.engine import DEFAULT_BUSY_TIMEOUT, make_engine
from app.store.errors import (
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreVersionError,
    translate,
)
from app.store.file_state import side_files_present, unchanged_since_clean_close
from app.store.migrate import VERSION_TABLE, current_revision, head_revision, known_revisions
from app.store.migrate import upgrade as upgrade_to
from app.store.repository import CaseRepository

log = logging.getLogger(__name__)

SQLITE_HEADER = b"SQLite format 3\x00"
NOT_MODIFIED = "The file was not modified"


def open_store(path_or_url: str | Path | URL, *, actor: str | None = None,
               busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
               daily_backup: bool = True, read_only: bool = False) -> CaseRepository:
    """Open (creating if needed) the case history and upgrade its schema to the current one.

    ``path_or_url`` is a file path (SQLite) or an SQLAlchemy URL (a string, or a ``URL``
    object: one that carries a password is never rendered with it). ``actor`` is written on
    audit events (default: the login name); ``busy_timeout`` is how long, in seconds, to
    wait for another process that holds the database. A damaged file raises StoreCorrupt
    carrying its backups (``.backups``, newest first) and is never modified. For an
    existing file, the first open of each day first copies it into ``backups/`` beside it
    (``daily_backup=False`` skips that; see ``app.store.backups``).
    """
    url, path = _resolve(path_or_url)
    if read_only and path is not None:
        return _open_read_only(path, actor, busy_timeout)
    if path is None:
        return _connect(url, url.render_as_string(hide_password=True), actor, busy_timeout)
    try:
        if _check_file(path, busy_timeout) and daily_backup:
            _back_up_once_a_day(path, busy_timeout)
        return _connect(url, str(path), actor, busy_timeout, path)
    except StoreCorrupt as exc:
        raise offer_backups(exc, path) from exc


def _connect(url: URL, location: str, actor: str | None, busy_timeout: float,
             path: Path | None = None) -> CaseRepository:
    engine = make_engine(url, busy_timeout)
    try:
        _migrate(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise translate(exc, location) from exc
    except BaseException:
        engine.dispose()
        raise
    return CaseRepository(engine, location, actor, db_path=path)


def _open_read_only(path: Path, actor: str | None, busy_timeout: float) -> CaseRepository:
    """A history file that cannot be written (permissions, an immutable file or folder, a
    read-only medium), opened to read: lists, ``audit verify``, exports. SQLite's
    ``immutable`` mode reads it without the -wal and -shm files WAL needs a writable folder
    for (it assumes nobody writes the file meanwhile, which is true of a file nobody can
    write). Nothing is migrated, backed up or written; a write raises StoreReadOnly."""
    if not path.is_file():
        raise StoreError(f"There is no case history at {path}.")
    _check_existing(path, busy_timeout)
    url = URL.create("sqlite", database=f"file:{path}",
                     query={"mode": "ro", "immutable": "1", "uri": "true"})
    engine = make_engine(url, busy_timeout, read_only=True)
    try:
        with engine.connect() as connection:
            current = current_revision(connection)
    except DBAPIError as exc:
        engine.dispose()
        raise translate(exc, str(path)) from exc
    if current != head_revision():
        engine.dispose()
        raise StoreVersionError(
            f"The case history {path} cannot be written and has schema {current}, not "
            f"{head_revision()}: open it once where it can be written (so it is upgraded), "
            "or with the Casewise that wrote it.")
    return CaseRepository(engine, str(path), actor, read_only=True)


def _back_up_once_a_day(path: Path, busy_timeout: float) -> None:
    """The day's backup, before the migrations touch the file. A backup that cannot be made
    (a full disk, a read-only backups folder) is logged and the store still opens; a copy
    that fails its check means the file is damaged, and that refuses the open."""
    if is_backup(path) or not backup_due(path):
        return
    try:
        backup_store(path, busy_timeout=busy_timeout)
    except StoreCorrupt:
        raise
    except StoreError as exc:
        log.warning("The daily backup of %s was not made: %s", path, exc)


def _resolve(path_or_url: str | Path | URL) -> tuple[URL, Path | None]:
    """The URL to connect to, and the database file when it is a plain SQLite file."""
    if isinstance(path_or_url, Path) or (isinstance(path_or_url, str)
                                         and "://" not in path_or_url):
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


def _check_file(path: Path, busy_timeout: float) -> bool:
    """Refuse what Casewise cannot or may not open; True when there is a database to keep."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreReadOnly(f"Cannot create the folder {folder} for the case history "
                            f"({exc.strerror or exc}). Choose a folder you can write to.") from exc
    existing = path.exists() and _check_existing(path, busy_timeout)
    # WAL mode writes -wal and -shm files beside the database, so the folder must be writable.
    for target, what in ((path, "file"), (folder, "folder")):
        if target.exists() and not os.access(target, os.W_OK):
            raise StoreReadOnly(
                f"The case history {path} cannot be written: its {what} {target} is "
                "read-only. Make it writable, or choose another data folder.")
    return existing


def _check_existing(path: Path, busy_timeout: float) -> bool:
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
    return bool(header)


def _inspect_read_only(path: Path, busy_timeout: float) -> None:
    """Integrity, ownership and schema version, read through a read-only connection.

    The integrity check is ``PRAGMA quick_check`` of every page when the file may have been
    changed outside Casewise (after a crash, or by anything else), and of the schema only
    when it is exactly as Casewise last closed it: reading every page takes about a second
    per 400 MB (100,000 cases), on every start. See ``app.store.file_state`` for the record
    that decides, and what else catches damage the short check cannot see.

    With no -wal, -shm or -journal beside the file no other process has it open, and it is
    opened as immutable: a read-only connection to a WAL database would otherwise create the
    -wal and -shm files and, unable to checkpoint, leave them behind. (A writer arriving
    during the check writes to its own new -wal, not to the pages being read.)
    """
    in_use = side_files_present(path)
    query = "mode=ro" if in_use else "mode=ro&immutable=1"
    check = ("PRAGMA quick_check(sqlite_schema)" if unchanged_since_clean_close(path)
             else "PRAGMA quick_check")
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?{query}", uri=True, timeout=busy_timeout)
        try:
            problems = [row[0] for row in connection.execute(check)]
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
    if code.startswith("SQLITE_CORRUPT"):
        return StoreCorrupt(f"The case history {path} is damaged ({exc}). {NOT_MODIFIED}; "
                            "restore it from a backup.")
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
