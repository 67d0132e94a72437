"""A team's shared history on a real PostgreSQL server (tests/helpers/postgres.py): reviewers
in parallel processes, the review queue's claims, search that finds what SQLite finds, the
password kept out of sight, and the server's faults (down, a dropped connection, a wrong
password, a newer schema, a statement timeout)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url

from app.review_queue import next_in_queue
from app.store import (
    StoreLocked,
    StoreTimeout,
    StoreUnavailable,
    StoreVersionError,
    open_store,
)
from app.store.engine import WRITER_LOCK_KEY
from app.store_location import (
    PASSWORD_FILE,
    LocationError,
    database_password,
    parse_url,
    save_database_password,
)
from tests.helpers.accounts import signer
from tests.helpers.cli import run_cli
from tests.helpers.data import PROJECT_ROOT, synthetic_rows, write_csv
from tests.helpers.raw_sql import raw_sql
from tests.store_helpers import escalation, prediction

pytestmark = pytest.mark.postgresql


def without_password(url: str) -> str:
    return make_url(url)._replace(password=None).render_as_string(hide_password=False)


def password_of(url: str) -> str:
    return make_url(url).password


# -- reviewers in parallel processes --------------------------------------------------------

def _writer(url: str, name: str, n: int, barrier) -> None:
    """A reviewer's process: waits for the others, then adds cases as fast as it can."""
    with open_store(url, actor=name, busy_timeout=30.0) as store:
        barrier.wait()
        for i in range(n):
            added = store.add_case(f"{name} case {i}: rash after the second dose.", "typed",
                                   prediction=prediction(), escalation=escalation())
            store.add_case(f"shared case {i}")  # every process adds the same texts too
            store.record_prediction(added.id, prediction("positive", 0.9))


def test_reviewers_in_parallel_processes_keep_one_chain(pg_url):
    open_store(pg_url).close()  # migrated once, before the race
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    workers = [context.Process(target=_writer, args=(pg_url, f"r{k}", 12, barrier))
               for k in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with open_store(pg_url) as store:
        result = store.verify_chain()
        assert result.ok, result.reason
        # 3 x 12 own cases, and the 12 shared texts stored once however many processes added
        # them: the content hash is unique and the lookup runs under the writers' lock.
        assert store.find_cases().total == 3 * 12 + 12
        assert len({e.hash for e in store.audit_events()}) == result.events


def test_two_score_runs_over_overlapping_files_store_each_case_once(home, tmp_path, pg_url):
    rows = [{"text": r["text"]} for r in synthetic_rows(4, seed=5)]  # 12 texts
    first = write_csv(tmp_path / "first.csv", rows[:8])
    second = write_csv(tmp_path / "second.csv", rows[4:])
    env = {"CASEWISE_DB_PASSWORD": password_of(pg_url)}
    url = without_password(pg_url)
    runs = [subprocess.Popen([sys.executable, "main.py", "score", str(f), "--no-explain",
                              "--json", "--db", url], cwd=PROJECT_ROOT,
                             env={**os.environ, "CASEWISE_HOME": str(home), **env,
                                  "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for f in (first, second)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _out, err in outputs]
    counts = [json.loads(out.splitlines()[-1]) for out, _err in outputs]
    # The 4 shared rows went in once: the run that came second skipped them, whether it
    # found them at its look-up or only under the writers' lock (a race).
    assert sum(c["stored"] for c in counts) == 12
    assert sum(c["skipped"] for c in counts) == 4
    with open_store(pg_url) as store:
        assert store.find_cases().total == 12
        assert store.verify_chain().ok


# -- the review queue's claims ---------------------------------------------------------------

def _queue(url: str, name: str, barrier, out) -> None:
    with open_store(url, actor=name, busy_timeout=30.0) as store:
        barrier.wait()
        out.put((name, next_in_queue(store, claimant=name).case_id))


def test_two_reviewers_asking_at_once_get_different_cases(pg_url):
    with open_store(pg_url) as store:
        for i in range(3):
            store.add_case(f"escalated case {i}", prediction=prediction(),
                           escalation=escalation())
    context = multiprocessing.get_context("spawn")
    barrier, out = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_queue, args=(pg_url, name, barrier, out))
               for name in ("ann", "bob")]
    for worker in workers:
        worker.start()
    got = dict(out.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(60)
    assert None not in got.values() and got["ann"] != got["bob"]


@pytest.mark.both_backends
def test_a_claim_is_held_renewed_released_and_taken_over_when_expired(history):
    ann = open_store(history, actor="ann")
    bob = open_store(history, actor="bob")
    try:
        ids = [ann.add_case(f"case {i}", prediction=prediction(),
                            escalation=escalation()).id for i in range(2)]
        first = next_in_queue(ann, claimant="ann")
        assert first.case_id == ids[0]
        step = next_in_queue(bob, claimant="bob")
        assert (step.case_id, step.held_by_others) == (ids[1], 1)
        assert "being reviewed by others" in step.describe()
        assert not bob.claim_case(ids[0], "bob")  # held by ann
        assert ann.claim_case(ids[0], "ann")  # ann renews her own
        # Ann's laptop closes: after the claim's 15 minutes the case is free again.
        bob.clock = lambda: ann.clock() + timedelta(minutes=16)
        assert bob.claim_case(ids[0], "bob")
        assert not ann.claim_case(ids[0], "ann")
        # A signed review ends the claim.
        reviewer = signer(bob, "bob")
        bob.add_review(ids[0], reviewer, "accept")
        assert ann.claimed_by_others("ann") == {ids[1]: "bob"}
        bob.release_claim(ids[1], "bob")
        assert ann.claimed_by_others("ann") == {}
    finally:
        ann.close()
        bob.close()


# -- search: the same cases on both databases ------------------------------------------------

CORPUS = [
    "Rash after the second dose; the rash cleared in two days.",
    "Café au lait spots noted; no rash.",
    "The e-mail from Dr. Müller (x@clinic.org) mentions naïve patients.",
    "Headaches went from eight a month to one: 3.5 mg works.",
    "Dose_reduction advised; RASHES recurring.",
    "Nausea, vomiting and dizziness after dosing.",
    "Patient reports no side effects whatsoever.",
    "Second-line therapy; rash-free since Monday.",
]
QUERIES = ["rash", "Rash", "rash*", "rashes", "dose", "dos*", "cafe", "café", "muller",
           "mail", "e-mail", "clinic", "org", '"second dose"', '"dose second"', '"rash cleared"',
           "3", "5", "3.5", "naive", "eight month", '"from eight"', "reduction", "dose_reduction",
           "rash free", '"rash free"', "line*", "nothing-matches", "", '"', "***", "a*",
           "side effect*", '"no side"', "MONDAY", "dizz*"]


def _search_results(location) -> dict[str, list[int]]:
    with open_store(location) as store:
        for text in CORPUS:
            store.add_case(text)
        found = {}
        for query in QUERIES:
            page = store.find_cases(search=query, sort="id", page_size=100)
            found[query] = [item.id for item in page.items]
        found["relevance: rash"] = [store.find_cases(search="rash", sort="relevance")
                                    .items[0].id]
        return found


def test_search_finds_the_same_cases_on_sqlite_and_postgresql(db, pg_url):
    on_sqlite, on_postgresql = _search_results(db), _search_results(pg_url)
    differing = {q: (on_sqlite[q], on_postgresql[q]) for q in on_sqlite
                 if on_sqlite[q] != on_postgresql[q]}
    assert differing == {}
    assert on_sqlite["cafe"] == [2] and on_sqlite["dos*"] == [1, 5, 6]
    assert on_sqlite["relevance: rash"] == [1]  # two mentions rank first on both


# -- the password is kept out of sight -------------------------------------------------------

def test_a_url_with_a_password_is_refused_everywhere(home, tmp_path):
    with pytest.raises(LocationError, match="holds a password"):
        parse_url("postgresql+psycopg://ann:hunter2@db.example.org/casewise")
    refused = run_cli(home, "history", "--db",
                      "postgresql+psycopg://ann:hunter2@db.example.org/casewise", check=False)
    assert refused.returncode == 2 and "casewise db password" in refused.stderr
    assert "hunter2" not in refused.stderr + refused.stdout
    from app.settings import Settings, load_settings

    settings = Settings(database_url="postgresql+psycopg://ann:hunter2@h/db")
    assert any("holds a password" in p for p in settings.problems())
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(
        {"version": 2, "database_url": "postgresql+psycopg://ann:hunter2@h/db"}))
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("app.settings").addHandler(handler)
    try:
        assert load_settings(config).database_url == ""  # dropped, not used
    finally:
        logging.getLogger("app.settings").removeHandler(handler)
    assert records and not any("hunter2" in line for line in records)


def test_the_password_comes_from_the_key_store_and_is_never_shown(home, pg_url, monkeypatch):
    config = home / "config"
    url = parse_url(without_password(pg_url))
    monkeypatch.delenv("CASEWISE_DB_PASSWORD", raising=False)
    told = run_cli(home, "db", "password", without_password(pg_url), "--password-stdin",
                   input_text=password_of(pg_url) + "\n")
    assert "Stored the password" in told.stdout and password_of(pg_url) not in told.stdout
    stored = config / PASSWORD_FILE
    assert stored.stat().st_mode & 0o777 == 0o600
    assert database_password(url, config) == password_of(pg_url)
    scored = run_cli(home, "history", "--json", "--db", without_password(pg_url),
                     env={"CASEWISE_DB_PASSWORD": ""})
    assert json.loads(scored.stdout) == []
    secret = password_of(pg_url)
    assert secret not in scored.stdout + scored.stderr
    assert secret not in (config / "settings.json").read_text() \
        if (config / "settings.json").exists() else True
    texts = raw_sql(pg_url, "SELECT string_agg(payload, ' ') FROM audit_events")
    assert secret not in (texts[0][0] or "")
    # A wrong one stored: the server refuses the login, and the message says where to fix it.
    save_database_password(url, "not-the-password", config)
    refused = run_cli(home, "history", "--db", without_password(pg_url), check=False,
                      env={"CASEWISE_DB_PASSWORD": ""})
    assert refused.returncode != 0 and "refused the login" in refused.stderr
    assert "not-the-password" not in refused.stderr


# -- faults on the real server ---------------------------------------------------------------

def test_a_wrong_password_says_so(pg_cluster, pg_url):
    wrong = make_url(pg_url).set(password="wrong")
    with pytest.raises(StoreUnavailable, match="refused the login") as raised:
        open_store(wrong)
    assert "wrong" not in str(raised.value)


def test_server_down_then_back_and_a_dropped_connection(pg_cluster, pg_url):
    store = open_store(pg_url, actor="ann")
    try:
        store.add_case("Before the outage.")
        pg_cluster.stop()
        try:
            with pytest.raises(StoreUnavailable, match="cannot be reached") as raised:
                store.add_case("During the outage.")
            assert "nothing was stored" in str(raised.value)
            with pytest.raises(StoreUnavailable):
                open_store(pg_url)
        finally:
            pg_cluster.start()
        added = store.add_case("After the outage.")  # the pool reconnects by itself
        assert added.new
        # The server ends the session's connections (an admin, a failover, an idle timeout):
        # the next write reconnects before it starts, and is stored once.
        raw_sql(pg_cluster.url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{make_url(pg_url).database}' AND pid <> pg_backend_pid()")
        again = store.add_case("After the connection was dropped.")
        assert again.new and store.add_case("After the connection was dropped.").new is False
        assert store.find_cases().total == 3
        assert store.verify_chain().ok
    finally:
        store.close()


def test_a_history_from_a_newer_casewise_is_refused(pg_url):
    open_store(pg_url).close()
    raw_sql(pg_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreVersionError, match="newer Casewise"):
        open_store(pg_url)


def test_a_statement_timeout_and_a_busy_lock_have_clear_messages(pg_url):
    slow = f"{pg_url}?options=-c%20statement_timeout%3D300"
    with open_store(slow, busy_timeout=10.0) as store:
        store.add_case("A case.")
        holder = _hold_lock(pg_url, "LOCK TABLE case_latest IN ACCESS EXCLUSIVE MODE")
        try:
            with pytest.raises(StoreTimeout, match="statement timeout"):
                store.find_cases()
        finally:
            holder.close()
    with open_store(pg_url, busy_timeout=0.3) as store:
        holder = _hold_lock(pg_url, f"SELECT pg_advisory_lock({WRITER_LOCK_KEY})")
        try:
            with pytest.raises(StoreLocked, match="Another Casewise"):
                store.add_case("Waits for the other writer.")
        finally:
            holder.close()
        assert store.add_case("Waits for the other writer.").new


def _hold_lock(url: str, statement: str):
    """Another session holding a lock until closed."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    connection = engine.connect()
    connection.execute(text(statement))

    class Holder:
        def close(self) -> None:
            connection.rollback()
            connection.close()
            engine.dispose()

    return Holder()



def test_a_nul_character_is_refused_on_postgresql_with_what_to_do(pg_url):
    """PostgreSQL text cannot hold NUL (SQLite can: tests/test_hostile_input.py); the case is
    refused whole, saying why, and the history stays as it was."""
    from app.store import InvalidRecord

    with open_store(pg_url) as store:
        store.add_case("Before.")
        with pytest.raises(InvalidRecord, match="NUL character"):
            store.add_case("A pasted\x00binary tail", prediction=prediction())
        assert store.find_cases().total == 1 and store.verify_chain().ok
