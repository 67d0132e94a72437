"""The audit trail, on SQLite and on PostgreSQL: every operation is a linked event, the
database refuses edits, and verify_chain finds changes made behind the app's back (raw SQL,
triggers dropped)."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading

import pytest
from sqlalchemy.exc import DBAPIError

from app.store import open_store
from tests.helpers.accounts import signer
from tests.helpers.raw_sql import drop_guard, raw_sql
from tests.store_helpers import escalation, opinion, prediction

GENESIS = "0" * 64
pytestmark = pytest.mark.both_backends


@pytest.fixture()
def flow(store):
    """Two cases with the whole flow; returns their ids."""
    ids = []
    ann = signer(store, "ann")  # the accounts' own events come first
    for text in ("Rash again.", "Great relief."):
        case_id = store.add_case(text, "typed").id
        store.record_prediction(case_id, prediction())
        store.record_escalation(case_id, escalation())
        store.record_opinion(case_id, opinion())
        store.add_review(case_id, ann, "accept")
        ids.append(case_id)
    return ids


def attack(location, *statements: str) -> None:
    """Raw SQL on the history, as someone with a database shell would do it."""
    raw_sql(location, *statements)


def canonical_hash(fields: dict) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_every_operation_appends_a_linked_event(store, flow):
    store.record_model_activated("m1", "f" * 64, {"labels": ["negative", "positive"]})
    store.record_policy_refitted("m1", "p-2", {"alpha": 0.1})
    store.record_export("/tmp/case-1.pdf", "e" * 64, [flow[0]])
    events = store.audit_events()
    assert [e.kind for e in events[:6]] == ["user_created", "key_created", "sign_in",
                                            "user_created", "key_created", "sign_in"]
    first_case = events[6:12]
    assert [e.kind for e in first_case] == ["case_created", "predicted", "escalated",
                                            "llm_asked", "reviewed", "signed"]
    assert [e.kind for e in events[-3:]] == ["model_activated", "policy_refitted", "exported"]
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == GENESIS
    for before, event in itertools.pairwise(events):
        assert event.prev_hash == before.hash
    for event in events:  # the documented hash: canonical JSON of the fields, prev_hash included
        fields = {k: getattr(event, k) for k in ("id", "time", "kind", "case_id", "actor",
                                                 "payload", "prev_hash")}
        assert canonical_hash(fields) == event.hash
        assert event.time.endswith("+00:00")
    assert first_case[4].actor == "ann" and first_case[0].actor == "tester"
    assert store.audit_events(case_id=flow[0])[-1].kind == "exported"
    assert store.chain_head() == (events[-1].id, events[-1].hash)
    assert tuple(store.verify_chain()) == (True, len(events), None)  # unpacks as a 3-tuple


def test_the_llm_event_records_what_was_sent(store, flow):
    (asked, _) = store.audit_events(kind="llm_asked")
    assert asked.payload["sent_text"] == opinion().sent_text
    assert asked.payload["sent_sha256"] == opinion().sent_sha256
    assert (asked.payload["backend"], asked.payload["model"]) == ("embedded", "SmolLM2-135M")


@pytest.mark.parametrize("table", ["audit_events", "reviews", "predictions", "cases"])
def test_the_database_refuses_update_and_delete(history, flow, table):
    column = {"audit_events": "actor", "reviews": "reason", "predictions": "label",
              "cases": "source"}[table]
    for statement in (f"UPDATE {table} SET {column} = 'x' WHERE id = 1",
                      f"DELETE FROM {table} WHERE id = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            attack(history, statement)


def test_verify_finds_an_edited_event_at_that_event(history, store, flow):
    target = store.audit_events(kind="escalated")[0]
    edited = json.dumps({**target.payload, "decision": "auto"}).replace("'", "''")
    attack(history, drop_guard(history, "audit_events", "update"),
           f"UPDATE audit_events SET payload = '{edited}' WHERE id = {target.id}")
    result = store.verify_chain()
    assert (result.ok, result.first_broken_id) == (False, target.id)
    assert "changed" in result.reason


def test_verify_finds_a_rehashed_event_at_the_next_link(history, store, flow):
    target = store.audit_events(kind="reviewed")[0]
    fields = {k: getattr(target, k) for k in ("id", "time", "kind", "case_id", "actor",
                                              "payload", "prev_hash")}
    fields["actor"] = "Mallory"
    attack(history, drop_guard(history, "audit_events", "update"),
           f"UPDATE audit_events SET actor = 'Mallory', hash = '{canonical_hash(fields)}' "
           f"WHERE id = {target.id}")
    assert store.verify_chain().first_broken_id == target.id + 1


def test_verify_finds_an_edited_record_at_the_event_that_cites_it(history, store, flow):
    cited = store.audit_events(kind="predicted")[1]
    record_id = cited.payload["record"]["id"]
    attack(history, drop_guard(history, "predictions", "update"),
           f"UPDATE predictions SET label = 'positive' WHERE id = {record_id}")
    result = store.verify_chain()
    assert (result.ok, result.first_broken_id) == (False, cited.id)
    assert f"predictions row {record_id} was changed" in result.reason


def test_verify_finds_a_deleted_event(history, store, flow):
    attack(history, drop_guard(history, "audit_events", "delete"),
           "DELETE FROM audit_events WHERE id = 3")
    result = store.verify_chain()
    assert (result.ok, result.first_broken_id) == (False, 4)
    assert "missing" in result.reason


def test_verify_finds_a_record_slipped_in_without_an_event(history, store, flow):
    case = store.get_case(flow[0])
    attack(history, "INSERT INTO reviews (case_id, reviewer_id, decision, label, reason, "
           f"meaning, signed_at, case_sha256) VALUES ({case.id}, 1, 'override', 'positive', "
           f"'backdated', 'approved', '2020-01-01 00:00:00.000000', '{'0' * 64}')")
    result = store.verify_chain()
    assert not result.ok and "reviews row" in result.reason and "no audit event" in result.reason


def test_verify_finds_a_case_list_row_edited_behind_the_apps_back(history, store, flow):
    """The case list is derived, not chained; verify still re-derives it from the records,
    since a reviewer works from it ("not reviewed yet")."""
    assert store.find_cases(reviewed=True).total == 2
    attack(history, f"UPDATE case_latest SET reviewed = false, review_decision = NULL "
               f"WHERE case_id = {flow[1]}")
    assert store.find_cases(reviewed=True).total == 1  # the list now hides a review
    result = store.verify_chain()
    assert not result.ok and f"case list row of case {flow[1]}" in result.reason


def test_the_chain_stays_linear_with_concurrent_writers(history, store):
    other = open_store(history, actor="other", busy_timeout=5.0)

    def add(repo, prefix):
        for i in range(15):
            repo.add_case(f"{prefix} case {i}")

    threads = [threading.Thread(target=add, args=(repo, name))  # one repository is shared
               for repo, name in ((store, "one"), (store, "two"), (other, "three"))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        other.close()
    assert tuple(store.verify_chain()) == (True, 45, None)


def test_verify_reports_its_progress(tmp_path):
    from app.store import open_store

    seen = []
    with open_store(tmp_path / "progress.db") as store:
        for i in range(30):
            store.add_case(f"case number {i} for the progress of the verification")
        result = store.verify_chain(progress=seen.append)
    assert result.ok
    assert seen and all(p.stage == "verifying the audit trail" for p in seen)
    assert [p.done for p in seen] == sorted(p.done for p in seen)
    assert 0 < seen[-1].done <= seen[-1].total
