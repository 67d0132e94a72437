"""Backups, and a damaged case history: refused at start with its backups offered, never
touched. Real files throughout; the damage is garbage written into the middle of a real one."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from app.store import NewCase, StoreCorrupt, backup_store, list_backups, open_store
from tests.store_helpers import escalation, prediction


@pytest.fixture()
def db(tmp_path):
    return tmp_path / "data" / "casewise.db"


def make_store(db: Path, cases: int = 60) -> None:
    with open_store(db, actor="tester") as store:
        store.add_cases([NewCase(f"Case {i}: " + "the rash came back after the dose. " * 8,
                                 prediction=prediction(), escalation=escalation())
                         for i in range(cases)])


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and its bytes: 'left alone' means this is unchanged."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def scribble(db: Path, keep_time: bool = False) -> None:
    """Garbage over a few pages of case text, as a bad copy or disk would (pages of the cases
    themselves: the quick check at open reads the schema, not every case)."""
    status = db.stat()
    data = bytearray(db.read_bytes())
    text_pages = [start for start in range(0, len(data), 4096)
                  if b"the rash came back" in data[start:start + 4096]]
    middle = text_pages[len(text_pages) // 2]
    data[middle:middle + 3 * 4096] = b"\xa5\x5a" * (3 * 2048)
    db.write_bytes(bytes(data))
    if keep_time:  # damage no timestamp shows, like a failing disk
        os.utime(db, ns=(status.st_atime_ns, status.st_mtime_ns))


def cases_in(path: Path) -> int:
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute("SELECT count(*) FROM cases").fetchone()[0]
    finally:
        connection.close()


def test_a_backup_is_a_whole_checked_copy(db):
    make_store(db)
    backup = backup_store(db)
    assert backup.parent == db.parent / "backups"
    assert backup.name.startswith("casewise-") and backup.suffix == ".db"
    assert list_backups(db) == [backup]
    assert cases_in(backup) == 60
    connection = sqlite3.connect(backup)
    try:
        assert connection.execute("PRAGMA quick_check").fetchone() == ("ok",)
        # one self-contained file, safe to copy: no -wal of its own
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    finally:
        connection.close()
    assert not [p for p in backup.parent.iterdir() if p.name.endswith(".partial")]


def test_the_newest_backups_and_older_weekly_and_monthly_ones_are_kept(db):
    """A week of tampered daily copies cannot push out every good one: the oldest backup of
    each recent week and month stays."""
    make_store(db)
    first = backup_store(db)
    assert first.stat().st_mode & 0o777 == 0o444  # read-only (mode bits: root may write anyway)
    folder = first.parent
    old = [folder / f"casewise-2026010{day}-120000.db" for day in range(1, 9)]
    for path in old:
        shutil.copy(first, path)
    first.unlink()
    (folder / "notes.txt").write_text("mine")
    newest = backup_store(db, keep=7)
    # Jan 1 2026 is a Thursday: Jan 1 is the oldest of its ISO week and month, Jan 5 of the
    # next week; the newest seven are kept whole.
    expected = {newest, *sorted(old, reverse=True)[:6], old[0], old[4]}
    assert set(list_backups(db)) == expected
    assert not old[1].exists() and len(expected) == 8
    assert (folder / "notes.txt").read_text() == "mine"


def test_the_first_open_of_a_day_backs_the_file_up_once(db):
    open_store(db).close()
    assert list_backups(db) == []  # a new, empty file: nothing to keep yet
    open_store(db, daily_backup=False).close()
    assert list_backups(db) == []
    with open_store(db) as store:
        store.add_case("Worth keeping.")
    (backup,) = list_backups(db)
    open_store(db).close()
    assert list_backups(db) == [backup]  # today's exists: skipped
    assert cases_in(backup) == 0  # taken before that session wrote


def test_a_backup_that_cannot_be_made_does_not_stop_the_open(db, caplog):
    make_store(db)
    shutil.rmtree(db.parent / "backups")  # (closing the store noted its clean close there)
    (db.parent / "backups").write_text("a file where the folder would go")
    with caplog.at_level(logging.WARNING), open_store(db) as store:
        assert store.find_cases().total == 60
    assert "daily backup" in caplog.text
    assert list_backups(db) == []


def test_a_damaged_file_is_refused_at_start_with_its_backups_and_left_alone(db):
    make_store(db)
    open_store(db).close()  # the day's backup
    older = db.parent / "backups" / "casewise-20260101-080000.db"
    shutil.copy(list_backups(db)[0], older)
    scribble(db)
    before = snapshot(db.parent)

    with pytest.raises(StoreCorrupt) as error:
        open_store(db)

    backups = list_backups(db)
    assert error.value.backups == backups and len(backups) == 2 and backups[1] == older
    message = str(error.value)
    assert str(db) in message and "not modified" in message
    assert str(backups[0]) in message and "copy it to another folder" in message
    assert snapshot(db.parent) == before  # the damaged file and the backups untouched
    with open_store(backups[0]) as rescued:  # what the message says to do works
        assert rescued.find_cases().total == 60
        assert rescued.verify_chain().ok


def test_a_damaged_file_with_no_backups_says_so(db):
    make_store(db)
    scribble(db)
    with pytest.raises(StoreCorrupt, match="No backup of it was found") as error:
        open_store(db)
    assert error.value.backups == []


def test_damage_that_keeps_size_and_time_is_found_by_verify_and_the_daily_backup(db):
    """The start checks every page only when the file changed since Casewise closed it; what
    a timestamp cannot show is caught by verify_chain and by the day's backup."""
    make_store(db)
    scribble(db, keep_time=True)
    with open_store(db, daily_backup=False) as store:  # the short start check passes
        result = store.verify_chain()
    assert not result.ok and result.reason.startswith("the database file is damaged")
    with pytest.raises(StoreCorrupt, match="damaged"):  # found: the next start checks all
        open_store(db, daily_backup=False)

    partial_before = snapshot(db.parent)
    with pytest.raises(StoreCorrupt, match="no backup was made"):
        backup_store(db)
    assert snapshot(db.parent) == partial_before  # no half or bad copy left behind


def test_the_daily_backup_refuses_a_file_with_hidden_damage(db):
    make_store(db)
    scribble(db, keep_time=True)
    before = snapshot(db.parent)
    with pytest.raises(StoreCorrupt, match="no backup was made"):
        open_store(db)
    assert snapshot(db.parent) == before and list_backups(db) == []
