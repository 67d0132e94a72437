"""Whether the database file is exactly as Casewise left it at its last clean close.

The full start-up check (``PRAGMA quick_check``) reads every page: about a second for the
400 MB of 100,000 cases, more from a cold disk, on every start. It is only needed when the
file may have changed outside Casewise's own SQLite writes: after a crash, a copy or sync
tool, another program, a restore. So when Casewise closes the file as the last connection
(the WAL checkpointed into it and removed), it records the file's size, modification time
and inode; a file that still matches, with no -wal or -shm beside it, is the file Casewise
left, and the start gets a cheap check of the schema instead. Anything else (no record, a
mismatch, side files left by a crash or held by another process) gets the full check.

What this cannot see is damage that keeps the size and the time, such as a failing disk:
the daily backup checks every page of its copy (``backups``), and ``verify_chain`` checks
the file too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from app.store.backups import backup_folder, is_backup

log = logging.getLogger(__name__)

SIDE_FILES = ("-wal", "-shm", "-journal")


def side_files_present(path: Path) -> bool:
    return any(Path(f"{path}{suffix}").exists() for suffix in SIDE_FILES)


def _record_path(path: Path) -> Path:
    return backup_folder(path) / f"{path.name}.clean-close.json"


def _stamp(path: Path) -> dict[str, Any]:
    status = path.stat()
    return {"size": status.st_size, "mtime_ns": status.st_mtime_ns, "inode": status.st_ino}


def record_clean_close(path: Path) -> None:
    """Note the file as Casewise leaves it; nothing when another connection still has it
    (it writes the record when it closes), or when the note cannot be written."""
    if not path.is_file() or side_files_present(path) or is_backup(path):
        return  # (a backup opened to recover from gets the full check every time)
    record = _record_path(path)
    partial = record.with_name(f".{record.name}.{os.getpid()}")
    try:
        record.parent.mkdir(exist_ok=True)
        partial.write_text(json.dumps(_stamp(path)), encoding="utf-8")
        os.replace(partial, record)
    except OSError as exc:  # a read-only folder: the next start runs the full check
        log.info("could not note the clean close of %s: %s", path, exc)
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def unchanged_since_clean_close(path: Path) -> bool:
    if side_files_present(path) or is_backup(path):
        return False
    try:
        noted = json.loads(_record_path(path).read_text(encoding="utf-8"))
        return noted == _stamp(path)
    except (OSError, ValueError):
        return False


def forget_clean_close(path: Path) -> None:
    """Make the next open run the full check (after restoring a file, or to time it)."""
    _record_path(path).unlink(missing_ok=True)
