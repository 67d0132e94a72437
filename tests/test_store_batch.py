"""Many cases in one transaction, on SQLite and on PostgreSQL: what add_cases stores is what
add_case would, all or nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.store import InvalidRecord, NewCase, StoreError
from app.store.queries import MANY_MATCHES
from tests.helpers.accounts import signer
from tests.helpers.raw_sql import dialect_of, raw_sql
from tests.store_helpers import escalation, prediction

pytestmark = pytest.mark.both_backends
REFUSE_ONE = {  # a trigger that aborts the insert of one escalation, in each dialect
    "sqlite": ["CREATE TRIGGER refuse_one BEFORE INSERT ON escalations "
               "WHEN new.policy_id = 'boom' BEGIN SELECT RAISE(ABORT, 'disk says no'); END"],
    "postgresql": [
        "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF new.policy_id = 'boom' THEN RAISE EXCEPTION 'disk says no'; END IF; "
        "RETURN new; END $$",
        "CREATE TRIGGER refuse_one BEFORE INSERT ON escalations FOR EACH ROW "
        "EXECUTE FUNCTION refuse_one()"],
}


def batch(n: int, start: int = 0) -> list[NewCase]:
    return [NewCase(f"Batch case {i}: the rash came back.", "csv", {"row": i},
                    prediction("negative" if i % 2 else "positive", 0.7),
                    escalation("escalate" if i % 3 == 0 else "auto"))
            for i in range(start, start + n)]


def test_a_batch_stores_what_add_case_would(store):
    single = store.add_case("One at a time.", "csv", {"row": -1}, prediction=prediction(),
                            escalation=escalation())
    added = store.add_cases(batch(5))
    assert [a.new for a in added] == [True] * 5
    assert [a.id for a in added] == list(range(single.id + 1, single.id + 6))

    by_batch, by_one = store.get_case(added[0].id), store.get_case(single.id)
    assert (by_batch.source, by_batch.metadata) == ("csv", {"row": 0})
    assert [e.kind for e in by_batch.events] == [e.kind for e in by_one.events] == [
        "case_created", "predicted", "escalated"]
    assert by_batch.escalation.data["prediction_set"] == ["negative"]
    assert by_batch.escalation.data == by_one.escalation.data
    # the decision refers to the case's own prediction, as add_case makes it
    assert store.get_case(added[0].id).events[2].payload["prediction_id"] == \
        by_batch.prediction.id
    assert {e.actor for e in by_batch.events} == {"tester"}
    assert tuple(store.verify_chain()) == (True, 18, None)


def test_bare_cases_and_cases_with_only_a_prediction_are_accepted(store):
    added = store.add_cases([NewCase("Just text."),
                             NewCase("Text and a result.", "typed",
                                     prediction=prediction("neutral", 0.6))])
    bare, scored = (store.get_case(a.id) for a in added)
    assert (bare.source, bare.metadata, bare.predictions, bare.escalations) == \
        ("typed", {}, (), ())
    assert scored.prediction.value == prediction("neutral", 0.6)
    assert scored.escalation is None
    assert added[1].record_ids == {"prediction": scored.prediction.id}
    assert added[0].record_ids == {}
    assert store.add_cases([]) == []
    assert store.verify_chain().ok


def test_duplicates_are_skipped_and_reported(store):
    stored = store.add_case("Already here.").id
    again = NewCase("Already here.", prediction=prediction())
    twice = NewCase("New, twice in the batch.", prediction=prediction())
    added = store.add_cases([again, twice, NewCase("Fresh."), twice])
    assert [(a.id, a.new) for a in added] == [
        (stored, False), (added[1].id, True), (added[2].id, True), (added[1].id, False)]
    assert store.get_case(stored).predictions == ()  # the skipped item stored nothing
    assert len(store.get_case(added[1].id).predictions) == 1  # its copy stored nothing more
    assert len(store.audit_events(kind="case_created")) == 3
    assert store.verify_chain().ok


def test_the_case_list_sees_batched_cases(store):
    added = store.add_cases(batch(6))
    store.add_review(added[0].id, signer(store, "ann"), "accept")
    assert store.find_cases().total == 6
    assert {i.id for i in store.find_cases(escalated=True).items} == {added[0].id, added[3].id}
    assert store.find_cases(label="negative").total == 3
    assert [i.id for i in store.find_cases(reviewed=True).items] == [added[0].id]
    assert store.find_cases(search="rash", model_id="m1").total == 6
    assert store.verify_chain().ok  # the case list agrees with the records


@pytest.mark.parametrize(("bad", "message"), [
    (NewCase("   "), "has no text"),
    (NewCase("Bad escalation.", escalation=replace(escalation(), decision="maybe")),
     "escalation decision"),
    (NewCase("Bad prediction.", prediction=replace(prediction(), model_id="")), "model_id"),
    (NewCase("A dict escalation.", escalation=escalation().to_dict()),
     "must be a EscalationDecision, not a dict"),
    (NewCase("A dict prediction.", prediction=prediction().to_dict()),
     "must be a Prediction, not a dict"),
    (NewCase("Unreadable prediction.", prediction=replace(prediction(), label="sideways")),
     "would not read back"),
    ({"text": "A mapping."}, "is a dict, not a NewCase"),
    ("just a string", "not a NewCase"),
])
def test_a_refused_item_stores_nothing_of_the_batch(store, bad, message):
    store.add_case("Before.")
    with pytest.raises(InvalidRecord, match=message):
        store.add_cases([*batch(3), bad, *batch(2, start=3)])
    assert store.find_cases().total == 1
    assert len(store.audit_events()) == 1
    assert store.verify_chain().ok


def test_a_write_failing_mid_batch_stores_nothing(history, store):
    """A real failure inside the database after the cases and predictions went in: the
    batch's escalation inserts hit a trigger that aborts on one of them."""
    store.add_cases(batch(2))
    raw_sql(history, *REFUSE_ONE[dialect_of(history)])
    doomed = [*batch(4, start=10), NewCase("The failing one.", prediction=prediction(),
                                           escalation=replace(escalation(), policy_id="boom")),
              *batch(4, start=20)]
    with pytest.raises(StoreError, match="disk says no"):
        store.add_cases(doomed)
    assert store.find_cases().total == 2
    assert all(store.case_id_for_text(case.text) is None for case in doomed)
    assert len(store.audit_events()) == 6
    assert store.verify_chain().ok
    assert all(a.new for a in store.add_cases(batch(3, start=30)))  # the next batch goes in
    assert tuple(store.verify_chain()) == (True, 15, None)


def test_batches_and_single_writes_interleave_in_one_chain(store):
    bob = signer(store, "bob")
    accounts = len(store.audit_events())  # the admin's and bob's own events
    for start in (0, 100, 200):
        store.add_cases(batch(4, start))
        case_id = store.add_case(f"Single {start}.", prediction=prediction()).id
        store.add_review(case_id, bob, "override", "neutral", "reads as neutral")
    result = store.verify_chain()
    # each round: 4 batch cases x 3 events, a single case's 2, a review and its signature
    assert result.ok and result.events == accounts + 3 * (4 * 3 + 4)


def test_a_search_matching_many_cases_pages_as_one_matching_few(store):
    """Above MANY_MATCHES the case list plans a search differently (it walks the sort index);
    the pages must not change. The later batch is stamped earlier, so created order and id
    order disagree."""
    now = datetime.now(UTC)
    for stamp, start in ((now, 0), (now - timedelta(days=3), 5000)):
        store.clock = lambda stamp=stamp: stamp
        store.add_cases(batch(MANY_MATCHES // 2 + 60, start))
    store.add_cases([NewCase(f"A rare {i} word.", prediction=prediction()) for i in range(3)])
    everything = [i.id for i in store.find_cases(sort="id", page_size=1000).items]
    everything += [i.id for p in (2, 3) for i in store.find_cases(sort="id", page=p,
                                                                   page_size=1000).items]
    first, second = everything[:MANY_MATCHES // 2 + 60], everything[MANY_MATCHES // 2 + 60:-3]
    newest_first = sorted(first, reverse=True) + sorted(second, reverse=True)

    many = store.find_cases(search="rash", page=3, page_size=100)
    assert many.total == len(first) + len(second) > MANY_MATCHES
    assert [i.id for i in many.items] == newest_first[200:300]
    last = store.find_cases(search="rash", sort="created", page=1, page_size=5)
    assert [i.id for i in last.items] == sorted(second)[:5]
    escalated = {i.id for i in store.find_cases(escalated=True, page_size=1000).items}
    assert len(escalated) < 1000  # all of them on that one page
    page = store.find_cases(search="rash", escalated=True, page=2, page_size=50)
    assert page.total == len(escalated)
    assert [i.id for i in page.items] == [i for i in newest_first if i in escalated][50:100]
    few = store.find_cases(search="rare", page_size=2)
    assert (few.total, [i.id for i in few.items]) == (3, everything[-1:-3:-1])
