"""The database file: connection settings, migrations, and the faults a user meets (a damaged
or foreign file, a newer schema, read-only files and folders, another process holding it)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.store import (
    NewCase,
    StoreCorrupt,
    StoreLocked,
    StoreReadOnly,
    StoreVersionError,
    case_list,
    open_store,
)
from app.store.engine import make_engine
from app.store.migrate import current_revision, head_revision, upgrade
from app.store.migrate import downgrade as downgrade_to
from app.store.schema import Base
from tests.helpers.accounts import signer
from tests.store_helpers import escalation, prediction


def fingerprint(path: Path) -> tuple[str, list[str]]:
    """The file's bytes and the files beside it: 'not modified' means both are unchanged."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(os.listdir(path.parent))


def revision_of(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def make_store(db: Path, cases: int = 3) -> None:
    with open_store(db) as store:
        for i in range(cases):
            store.add_case(f"case {i} " + "words " * 40)


@contextmanager
def read_only(path: Path):
    """Make a file or folder read-only, for root too (chattr +i), and undo it afterwards."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root and cannot make the file immutable here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_every_connection_gets_wal_foreign_keys_and_a_busy_timeout(db):
    engine = make_engine(f"sqlite:///{db}", busy_timeout=0.25)
    try:
        for _ in range(2):  # two pooled connections, each configured
            with engine.connect() as connection:
                pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
                assert pragma("journal_mode") == "wal"
                assert pragma("foreign_keys") == 1
                assert pragma("busy_timeout") == 250
                assert pragma("synchronous") == 1  # NORMAL
    finally:
        engine.dispose()


@pytest.mark.both_backends
def test_the_migrations_build_exactly_the_models(history):
    from app.store.migrations.env import _include_name
    from tests.helpers.raw_sql import url_of

    open_store(history).close()
    engine = make_engine(url_of(history))
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            # Search is raw SQL on each database (FTS5 tables, the tsvector column).
            context = MigrationContext.configure(connection, opts={
                "include_name": _include_name, "compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.postgresql
def test_a_postgresql_history_from_revision_one_is_upgraded_with_search_and_guards(pg_url):
    """Rows written before 0005 are searchable after it (the tsvector is generated for
    them), and the guards are in place."""
    from tests.helpers.raw_sql import raw_sql, trigger_names

    engine = make_engine(pg_url)
    upgrade(engine, "0001")
    text = "An old Rash case, naïve patient, from revision one."
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO cases (created, text, content_sha256, source, metadata) VALUES "
            f"('2026-01-01 09:00:00+00', '{text}', "
            f"'{hashlib.sha256(text.encode()).hexdigest()}', 'csv', '{{}}')")
    engine.dispose()
    with open_store(pg_url) as store:
        assert [i.id for i in store.find_cases(search="naive rash*").items] == [1]
        assert store.add_case(text).new is False
    assert {"cases_no_update", "cases_no_delete", "cases_no_truncate",
            "audit_events_no_truncate"} <= trigger_names(pg_url)
    with pytest.raises(Exception, match="append-only: TRUNCATE refused"):
        raw_sql(pg_url, "TRUNCATE cases CASCADE")


def test_an_old_database_is_upgraded_in_place_and_keeps_its_rows(db):
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine, "0001")
    text = "An old rash case from revision one."
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO models (id, card, created) VALUES ('m1', '{}', '2026-01-01 09:00:00')")
        connection.exec_driver_sql(
            "INSERT INTO cases (created, text, content_sha256, source, metadata) VALUES "
            f"('2026-01-01 09:00:00.000000', '{text}', "
            f"'{hashlib.sha256(text.encode()).hexdigest()}', 'csv', '{{}}')")
        connection.exec_driver_sql(
            "INSERT INTO predictions (case_id, created, model_id, label, confidence, data) "
            "VALUES (1, '2026-01-01 09:00:00.000000', 'm1', 'negative', 0.9, '{}')")
    engine.dispose()
    assert revision_of(db) == "0001"

    with open_store(db) as store:
        assert revision_of(db) == head_revision() == "0006"
        assert store.get_case(1).text == text
        (summary,) = store.find_cases(search="rash", label="negative").items
        assert (summary.id, summary.created) == (1, "2026-01-01T09:00:00.000000+00:00")
        assert store.add_case(text).new is False  # dedup still sees the old row
        assert store.add_case("A new case after the upgrade.").new
    with sqlite3.connect(db) as connection:
        indexes = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"ix_audit_events_case_id", "ix_audit_events_kind"} <= indexes


def downgrade(db: Path, revision: str) -> None:
    engine = make_engine(f"sqlite:///{db}")
    try:
        downgrade_to(engine, revision)
    finally:
        engine.dispose()


def case_list_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT * FROM case_latest ORDER BY case_id").fetchall()


def test_0003_builds_the_case_list_from_the_records_already_stored(db):
    """A 0002 database with history (re-scored cases, superseded reviews, a bare case) gets
    the case list rows its writes would have made."""
    with open_store(db) as store:
        ids = [store.add_case(f"Case {i} about a rash.", prediction=prediction(),
                              escalation=escalation("auto" if i % 2 else "escalate")).id
               for i in range(6)]
        store.record_prediction(ids[1], prediction("positive", 0.9, model_id="m2"))
        store.record_escalation(ids[1], escalation("escalate"))
        store.add_review(ids[0], signer(store, "ann"), "accept")
        store.add_review(ids[2], signer(store, "ann"), "defer")
        store.add_review(ids[2], signer(store, "bob"), "override", "neutral",
                         "on a second look")
        store.add_review(ids[3], signer(store, "bob"), "defer")
        bare = store.add_case("No result yet.").id
    written = case_list_rows(db)
    downgrade(db, "0002")
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM sqlite_master "
                                  "WHERE name = 'case_latest'").fetchone() == (0,)
    assert revision_of(db) == "0002"

    with open_store(db) as store:
        assert revision_of(db) == "0006"
        assert case_list_rows(db) == written
        with store._transaction(write=False) as session:  # re-derive it from the records
            assert case_list.first_disagreement(session) is None
        assert [i.id for i in store.find_cases(model_id="m2").items] == [ids[1]]
        assert {i.id for i in store.find_cases(reviewed=True).items} == {ids[0], ids[2]}
        assert {i.id for i in store.find_cases(reviewed=False).items} == {
            ids[1], ids[3], ids[4], ids[5], bare}
        assert [i.id for i in store.find_cases(reviewer="bob", decision="override").items] \
            == [ids[2]]
        assert store.find_cases(escalated=True).total == 4  # ids 0, 2, 4 and re-decided 1
        # (the downgrade to 0002 dropped the accounts and signatures of revision 0004, so
        # the chain now cites signature rows that are gone: verify says so)
        assert "row 1 cited by event" in store.verify_chain().reason


def test_planner_statistics_are_taken_on_close_once_the_store_grew(db):
    with open_store(db) as store:
        store.add_cases([NewCase(f"Case {i}.", prediction=prediction(),
                                 escalation=escalation()) for i in range(1200)])
    with sqlite3.connect(db) as connection:
        (stat,) = connection.execute("SELECT stat FROM sqlite_stat1 WHERE idx = "
                                     "'ix_case_latest_created'").fetchone()
    assert stat.split()[0] == "1200"
    with open_store(db) as store:  # the statistics are SQLite's business: the schema is ours
        assert store.find_cases(label="negative", escalated=True).total == 1200


def test_a_file_that_is_not_a_database_is_refused_unmodified(tmp_path):
    db = tmp_path / "my data é" / "casewise.db"  # spaces and accents in the path, too
    db.parent.mkdir()
    db.write_bytes(b"these are not the pages you are looking for\n" * 200)
    before = fingerprint(db)
    with pytest.raises(StoreCorrupt, match="not modified") as error:
        open_store(db)
    assert str(db) in str(error.value)
    assert fingerprint(db) == before


def test_a_damaged_database_is_refused_unmodified(db):
    make_store(db, cases=30)
    data = bytearray(db.read_bytes())
    for page in range(2, len(data) // 4096, 2):  # scribble over every other page
        data[page * 4096:page * 4096 + 100] = b"\xa5" * 100
    db.write_bytes(bytes(data))
    before = fingerprint(db)
    with pytest.raises(StoreCorrupt, match=r"(?s)damaged|malformed.*not modified") as error:
        open_store(db)
    assert str(db) in str(error.value) and "not modified" in str(error.value)
    assert fingerprint(db) == before


def test_another_applications_database_is_refused_unmodified(db):
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE contacts (name TEXT)")
    before = fingerprint(db)
    with pytest.raises(StoreCorrupt, match="not a Casewise case history"):
        open_store(db)
    assert fingerprint(db) == before


def test_a_database_from_a_newer_casewise_is_refused_unmodified(db):
    make_store(db)
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    before = fingerprint(db)
    with pytest.raises(StoreVersionError, match=r"newer Casewise.*9999"):
        open_store(db)
    assert fingerprint(db) == before


@pytest.mark.parametrize("what", ["file", "folder"])
def test_a_read_only_file_or_folder_gives_a_clear_error(db, what):
    make_store(db)
    target = db if what == "file" else db.parent
    with read_only(target), pytest.raises(StoreReadOnly, match=f"its {what}.*read-only"):
        open_store(db)


def test_a_write_refused_by_sqlite_gives_a_clear_error(db):
    make_store(db)
    with open_store(f"sqlite:///file:{db}?mode=ro&uri=true") as store:
        assert store.find_cases().total == 3  # reading works
        with pytest.raises(StoreReadOnly, match="read-only"):
            store.add_case("Cannot be written.")


def test_a_locked_database_gives_a_clear_error_and_stores_nothing(db):
    store = open_store(db, busy_timeout=0.2)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
        start = time.monotonic()
        with pytest.raises(StoreLocked, match=r"Another Casewise is using the database .*"
                                              r"close it and retry"):
            store.add_case("Blocked for now.", prediction=prediction())
        assert 0.15 < time.monotonic() - start < 5  # waited the busy timeout, no longer
        holder.execute("ROLLBACK")
        assert store.case_id_for_text("Blocked for now.") is None
        assert store.add_case("Blocked for now.").new  # free again: it goes through
    finally:
        holder.close()
        store.close()
