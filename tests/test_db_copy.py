"""``db copy``: a whole case history between SQLite files and PostgreSQL databases, on real
files and the test PostgreSQL server. The copy keeps every row and id, verifies (signatures
and checkpoints included), and a refusal or a cancel leaves the target as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import Text, create_engine, select, type_coerce

from app.accounts.installation import installation_key
from app.store import open_store
from app.store.copy import NOT_COPIED, CopyRefused, copy_history
from app.store.schema import Base, JSONText
from models.progress import CancelFlag, Cancelled, Progress
from tests.helpers.accounts import signer
from tests.helpers.cli import run_main
from tests.helpers.raw_sql import drop_guard, raw_sql, trigger_names, url_of
from tests.store_helpers import attribution, escalation, opinion, prediction

# Tests taking ``history`` (the target) run on an SQLite file and on PostgreSQL.
pytestmark = pytest.mark.both_backends


def fill(location, tmp_path: Path) -> None:
    """A whole flow: accounts, cases with every record, an override, a superseded review,
    a judgement, model events and a signed checkpoint."""
    with open_store(location, actor="tester") as store:
        store.set_anchor(installation_key(tmp_path / "config"))
        ann, bob = signer(store, "ann"), signer(store, "bob")
        store.record_model_activated("m1", "f" * 64, {"labels": ["negative", "positive"]})
        for text in ("Rash again.", "Great relief.", "Headache, then nothing."):
            case_id = store.add_case(text, "typed", {"ward": "b"},
                                     prediction=prediction(), escalation=escalation()).id
            store.record_attribution(case_id, attribution())
            store.record_opinion(case_id, opinion())
            store.record_judgement(case_id, "negative", "looks bad", judge="ann")
            store.add_review(case_id, ann, "accept")
        store.add_review(case_id, bob, "override", "positive", "the words say so", "approved")
        store.checkpoint("test")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("source")
    fill(folder / "source.db", folder)
    return folder / "source.db"


@pytest.fixture()
def source(built, tmp_path) -> Path:
    """A writable copy of the module's history (an SQLite file)."""
    path = tmp_path / "source" / "source.db"
    path.parent.mkdir()
    shutil.copy(built, path)
    return path


def rows(location) -> dict[str, list[tuple]]:
    """Every row of every table of the schema, JSON as its stored text, in key order."""
    engine = create_engine(url_of(location))
    try:
        with engine.connect() as connection:
            return {table.name: [tuple(r) for r in connection.execute(
                select(*[type_coerce(c, Text) if isinstance(c.type, JSONText) else c
                         for c in table.columns]).order_by(*table.primary_key.columns))]
                    for table in Base.metadata.sorted_tables if table.name not in NOT_COPIED}
    finally:
        engine.dispose()


def verified(location) -> None:
    with open_store(location, actor="tester") as store:
        result = store.verify_chain()
    assert result.ok, result.reason
    assert result.signatures == 4 and not result.bad_signatures
    assert result.anchored_to is not None


@pytest.mark.postgresql
def test_round_trip_sqlite_postgresql_sqlite_keeps_every_row(source, pg_url, tmp_path):
    there = copy_history(source, pg_url)
    back = copy_history(pg_url, tmp_path / "back.db")
    original = rows(source)
    assert rows(pg_url) == original and rows(tmp_path / "back.db") == original
    assert dict(there.tables) == {name: len(r) for name, r in original.items()} | {
        "store_facts": 0}  # the migrations wrote the same fact already
    assert back.head == there.head == (original["audit_events"][-1][0],
                                       original["audit_events"][-1][-1])
    for location in (pg_url, tmp_path / "back.db"):
        verified(location)
        with open_store(location, actor="tester") as store:  # full-text search was rebuilt
            assert store.find_cases(search="headache").total == 1


def test_a_non_empty_target_is_refused_and_left_unchanged(source, history):
    with open_store(history, actor="tester") as store:
        store.add_case("Already here.", "typed")
    before = rows(history)
    with pytest.raises(CopyRefused, match=r"is not empty.*nothing was copied"):
        copy_history(source, history)
    assert rows(history) == before


def test_a_source_that_does_not_verify_is_refused(source, tmp_path):
    raw_sql(source, drop_guard(source, "predictions", "update"),
            "UPDATE predictions SET label = 'positive' WHERE id = 1")
    target = tmp_path / "copy.db"
    with pytest.raises(CopyRefused, match=r"does not verify.*audit verify"):
        copy_history(source, target)
    assert not target.exists()  # refused before the target was even opened


def test_a_cancelled_copy_leaves_the_target_as_it_was(source, history, monkeypatch):
    monkeypatch.setattr("app.store.copy.CHUNK", 3)  # many chunks: cancel in the middle
    with open_store(history, actor="tester"):
        pass
    empty = rows(history)
    cancel, seen = CancelFlag(), []

    def halfway(progress: Progress) -> None:
        if progress.stage.startswith("copying") and progress.done >= progress.total // 2:
            seen.append(progress.done)
            cancel.cancel()

    with pytest.raises(Cancelled):
        copy_history(source, history, progress=halfway, cancel=cancel)
    assert seen and 0 < seen[0] < sum(map(len, rows(source).values()))
    assert rows(history) == empty
    copy_history(source, history)  # still openable, still empty: the copy goes through
    assert rows(history) == rows(source)


def test_a_copy_takes_new_cases_and_reviews_after_it(source, history):
    copy_history(source, history)
    copied = rows(history)
    with open_store(history, actor="tester") as store:
        case = store.add_case("New after the copy.", "typed", prediction=prediction())
        review = store.add_review(case.id, signer(store, "cleo"), "accept")
        result = store.verify_chain()
    assert case.id == max(r[0] for r in copied["cases"]) + 1
    assert review.id == max(r[0] for r in copied["reviews"]) + 1
    assert result.ok, result.reason


def test_append_brings_an_earlier_copy_up_to_date(source, history, tmp_path):
    copy_history(source, history)
    with open_store(source, actor="tester") as store:
        store.set_anchor(installation_key(tmp_path / "config"))
        case_id = store.add_case("Later case.", "typed", prediction=prediction()).id
        store.add_review(case_id, signer(store, "ann"), "accept")
    report = copy_history(source, history, append=True)
    assert report.appended and dict(report.tables)["cases"] == 1
    assert rows(history) == rows(source)
    assert copy_history(source, history, append=True).rows == 0  # nothing new


def test_append_refuses_a_target_that_went_its_own_way(source, history):
    copy_history(source, history)
    with open_store(history, actor="tester") as store:
        store.add_case("Only in the target.", "typed")
    before = rows(history)
    with pytest.raises(CopyRefused, match="went separate ways"):
        copy_history(source, history, append=True)
    assert rows(history) == before


def test_a_fact_from_before_accounts_is_copied_and_stays_guarded(source, history):
    """A history migrated from before accounts names its last unsigned review in
    store_facts; a new target's migrations wrote 0 there, so the copy replaces it."""
    guard = raw_sql(source, "SELECT sql FROM sqlite_master WHERE name = "
                            "'store_facts_no_update'")[0][0]
    raw_sql(source, "DROP TRIGGER store_facts_no_update",
            "UPDATE store_facts SET value = '2' WHERE name = 'accounts_from_review_id'", guard)
    copy_history(source, history)
    assert raw_sql(history, "SELECT value FROM store_facts") == [("2",)]
    assert "store_facts_no_update" in trigger_names(history)


def test_the_cli_copies_and_refuses_in_one_line(source, tmp_path, capsys):
    target = tmp_path / "copy.db"
    done = run_main(["db", "copy", str(source), str(target)], capsys)
    assert done.out.startswith("copied ") and "the copy verifies" in done.out
    assert "verifying the audit trail of the source" in done.err  # the bars say whose
    assert "copying the case history" in done.err
    assert "verifying the audit trail of the copy" in done.err
    assert rows(target) == rows(source)
    refused = run_main(["db", "copy", str(source), str(target)], capsys, code=2)
    last = refused.err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not empty" in last
    appended = run_main(["db", "copy", "--append", str(source), str(target)], capsys)
    assert appended.out.startswith("appended 0 rows")
    missing = run_main(["db", "copy", str(tmp_path / "typo.db"), str(target)], capsys, code=2)
    assert missing.err.strip() == (f"error: There is no case history at {tmp_path / 'typo.db'}; "
                                   "give an existing file or a database URL as the source.")


@pytest.mark.postgresql
def test_the_copy_writes_under_the_writers_lock(source, pg_url):
    """Into PostgreSQL the copy holds the advisory lock the app's writers queue on, so no
    writer slips an event in between the emptiness check and the commit."""
    held = []

    def look(progress: Progress) -> None:
        if progress.stage.startswith("copying"):
            held.append(raw_sql(pg_url, "SELECT count(*) FROM pg_locks WHERE "
                                        "locktype = 'advisory' AND granted")[0][0])

    copy_history(source, pg_url, progress=look)
    assert held and all(count == 1 for count in held)
