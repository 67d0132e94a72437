"""Backups of the case history, for the day the file is found damaged.

A backup is a copy made with SQLite's online backup API (consistent even while Casewise
writes), into ``<database folder>/backups/casewise-YYYYmmdd-HHMMSS.db`` (local time). It is
written under a temporary name, checked with ``PRAGMA quick_check``, flushed to disk and only
then renamed: a backup that exists is whole and sound. The check reads every page of the
copy, so it is also the full check of the database itself, once a day (the start checks
every page only when the file changed outside Casewise: see ``file_state``): a copy that
fails it is thrown away and the database reported damaged, so a bad copy never pushes a good
one out of the newest ``keep``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from app.store.engine import DEFAULT_BUSY_TIMEOUT
from app.store.errors import StoreCorrupt, StoreError

log = logging.getLogger(__name__)

BACKUP_FOLDER = "backups"
KEEP = 7  # the newest daily backups
KEEP_WEEKS = 8  # and the oldest backup of each of the newest weeks that have one
KEEP_MONTHS = 12  # and of each of the newest months
NAME = re.compile(r"casewise-\d{8}-\d{6}\.db")
PARTIAL_SUFFIX = ".partial"
STALE_PARTIAL_SECONDS = 24 * 3600  # a partial this old belongs to no running backup


def backup_folder(db_path: str | Path) -> Path:
    return Path(db_path).expanduser().resolve().parent / BACKUP_FOLDER


def list_backups(db_path: str | Path) -> list[Path]:
    """The backups of the database at ``db_path``, newest first (their names sort by time)."""
    return _backups_in(backup_folder(db_path))


def _backups_in(folder: Path) -> list[Path]:
    try:
        found = [p for p in folder.iterdir() if NAME.fullmatch(p.name) and p.is_file()]
    except OSError:  # no folder yet, or one we may not read
        return []
    return sorted(found, key=lambda p: p.name, reverse=True)


def offer_backups(error: StoreCorrupt, db_path: str | Path) -> StoreCorrupt:
    """``error`` with the backups of ``db_path`` attached and the newest named in its message,
    with how to open it. The damaged file is left alone: the user decides what to do."""
    if error.backups:
        return error
    found = list_backups(db_path)
    if not found:
        return StoreCorrupt(f"{error} No backup of it was found in {backup_folder(db_path)}.")
    newest = found[0]
    taken = datetime.strptime(newest.stem, "casewise-%Y%m%d-%H%M%S").strftime("%Y-%m-%d %H:%M")
    return StoreCorrupt(
        f"{error} The newest of its {len(found)} backup(s) is {newest} (made {taken}). To work "
        "from it, copy it to another folder and open the copy with --db (backups are kept "
        "read-only; `audit verify --db COPY` checks it first); the damaged file stays where "
        "it is for you to keep or remove.", found)


def backup_store(db_path: str | Path, *, keep: int = KEEP,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> Path:
    """Copy the database into its backups folder, read-only, and prune the folder: the
    newest ``keep`` backups stay, and older weekly and monthly ones (``kept``).

    Returns the new backup. Raises StoreCorrupt (and keeps no copy) when the copy is not a
    sound database, which means the original is damaged; StoreError when it cannot be made.
    """
    source = Path(db_path).expanduser().resolve()
    if not source.is_file():
        raise StoreError(f"There is no case history at {source} to back up.")
    folder = backup_folder(source)
    target = folder / f"casewise-{datetime.now().strftime('%Y%m%d-%H%M%S')}.db"
    partial = folder / f".{target.name}.{os.getpid()}{PARTIAL_SUFFIX}"
    try:
        folder.mkdir(exist_ok=True)
        _copy(source, partial, busy_timeout)
        _require_sound(partial, source)
        _flush(partial)
        os.chmod(partial, 0o444)  # read-only: a backup is evidence, not a working copy
        os.replace(partial, target)  # same-second backups: the newer copy wins the name
        _flush(folder)
        _prune(folder, keep)
    except OSError as exc:
        raise StoreError(f"Could not write a backup of {source} in {folder} "
                         f"({exc.strerror or exc}); check that the folder can be written "
                         "and the disk has room.") from exc
    finally:
        with contextlib.suppress(OSError):  # e.g. the folder could not be made at all
            partial.unlink(missing_ok=True)
    return target


def backup_due(db_path: str | Path) -> bool:
    """True when no backup was taken today (local time)."""
    today = datetime.now().strftime("%Y%m%d")
    folder = backup_folder(db_path)
    return not folder.is_dir() or not any(folder.glob(f"casewise-{today}-*.db"))


def is_backup(db_path: str | Path) -> bool:
    """The file is one of our backups (opened to recover): backing it up would nest them."""
    path = Path(db_path)
    return path.parent.name == BACKUP_FOLDER and NAME.fullmatch(path.name) is not None


def _copy(source: Path, partial: Path, busy_timeout: float) -> None:
    try:
        reader = sqlite3.connect(source, timeout=busy_timeout)
        try:
            writer = sqlite3.connect(partial)
            try:
                reader.backup(writer)
                # A backup is one self-contained file: no -wal beside it to lose when copied.
                writer.execute("PRAGMA journal_mode = DELETE")
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorname", "") or ""
        if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            raise StoreCorrupt(f"The case history {source} is damaged ({exc}); no backup "
                               "was made.") from exc
        raise StoreError(f"Could not back up the case history {source} ({exc}).") from exc


def _require_sound(copy: Path, source: Path) -> None:
    connection = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    finally:
        connection.close()
    if problems != ["ok"]:
        raise StoreCorrupt(f"The case history {source} is damaged "
                           f"({'; '.join(problems[:3])}); no backup was made of it.")


def _flush(path: Path) -> None:
    """fsync a file, or a folder (so a rename in it survives a power cut; POSIX only)."""
    if path.is_dir() and os.name == "nt":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def kept(backups: list[Path], keep: int = KEEP, weeks: int = KEEP_WEEKS,
         months: int = KEEP_MONTHS) -> set[Path]:
    """Which backups (newest first) to keep: the newest ``keep``, and the oldest of each of
    the newest ``weeks`` ISO weeks and ``months`` months. Someone who tampers with the
    history gets tampered daily copies, but they cannot push out the older weekly and
    monthly ones for months (and ``audit verify --db BACKUP`` checks any of them)."""
    keep_set = set(backups[:max(keep, 1)])
    for period, count in ((_week, weeks), (_month, months)):
        oldest: dict[str, Path] = {}
        for backup in backups:  # newest first: the last one seen in a period is its oldest
            oldest[period(backup)] = backup
        newest_periods = sorted(oldest, reverse=True)[:count]
        keep_set.update(oldest[p] for p in newest_periods)
    return keep_set


def _taken(backup: Path) -> datetime:
    return datetime.strptime(backup.stem, "casewise-%Y%m%d-%H%M%S")


def _week(backup: Path) -> str:
    year, week, _ = _taken(backup).isocalendar()
    return f"{year:04d}-W{week:02d}"


def _month(backup: Path) -> str:
    return _taken(backup).strftime("%Y-%m")


def _prune(folder: Path, keep: int) -> None:
    backups = _backups_in(folder)
    keeping = kept(backups, keep)
    for old in backups:
        if old not in keeping:
            old.unlink(missing_ok=True)
    cutoff = time.time() - STALE_PARTIAL_SECONDS
    for partial in folder.glob(f".casewise-*{PARTIAL_SUFFIX}"):
        try:
            if partial.stat().st_mtime < cutoff:  # left by a killed backup
                partial.unlink()
        except OSError:
            continue
