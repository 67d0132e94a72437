"""The case history on a real SQLite file and a real PostgreSQL database: round-trips, dedup,
review rules, the case list."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.store import CaseNotFound, InvalidRecord, InvalidReview, StoreError
from tests.helpers.accounts import signer
from tests.store_helpers import attribution, escalation, opinion, prediction

pytestmark = pytest.mark.both_backends


def scored_case(store, text: str, label: str = "negative", confidence: float = 0.8,
                decision: str = "escalate", model_id: str = "m1") -> int:
    added = store.add_case(text, "csv", prediction=prediction(label, confidence, model_id),
                           escalation=escalation(decision))
    return added.id


# -- round-trips ---------------------------------------------------------------------------------

def test_a_case_and_its_records_come_back_as_stored(store):
    records = {"prediction": prediction(), "attribution": attribution(),
               "escalation": escalation(), "opinion": opinion()}
    added = store.add_case("The rash came back after two days.", "typed", {"ward": "B"})
    store.record_prediction(added.id, records["prediction"])
    store.record_attribution(added.id, records["attribution"])
    store.record_escalation(added.id, records["escalation"])
    store.record_opinion(added.id, records["opinion"])

    case = store.get_case(added.id)
    assert added.new and case.text == "The rash came back after two days."
    assert (case.source, case.metadata) == ("typed", {"ward": "B"})
    assert case.created.endswith("+00:00")
    for kind, record in records.items():  # the to_dict, as JSON keeps it: tuples are lists
        assert getattr(case, kind).data == record.to_dict()
        assert getattr(case, kind).value == record
    assert case.prediction.data["prediction_set"] == ["negative"]
    assert case.escalation.data["ood_threshold"] == float("inf")  # kept, not refused
    assert case.review is None
    assert [e.kind for e in case.events] == ["case_created", "predicted", "explained",
                                             "escalated", "llm_asked"]


def test_the_same_text_is_stored_once(store):
    first = store.add_case("Same words.", "csv")
    again = store.add_case("Same words.", "typed", prediction=prediction())
    assert (again.id, again.new) == (first.id, False)
    assert store.case_id_for_text("Same words.") == first.id
    assert store.case_id_for_text("Other words.") is None
    assert store.get_case(first.id).predictions == ()  # the re-run stored nothing
    assert len(store.audit_events(kind="case_created")) == 1


def test_a_case_with_its_result_is_stored_whole_or_not_at_all(store):
    with pytest.raises(InvalidRecord, match="escalation decision"):
        store.add_case("Half stored?", prediction=prediction(),
                       escalation=replace(escalation(), decision="maybe"))
    assert store.case_id_for_text("Half stored?") is None
    assert store.audit_events() == ()


def test_records_need_their_key_fields_and_an_existing_case(store):
    case_id = store.add_case("A case.").id
    with pytest.raises(InvalidRecord, match="model_id"):
        store.record_prediction(case_id, replace(prediction(), model_id="  "))
    with pytest.raises(InvalidRecord, match=r"cannot be stored as JSON"):
        store.record_opinion(case_id, replace(opinion(), redactions=({"at": object()},)))
    with pytest.raises(CaseNotFound):
        store.record_prediction(999, prediction())
    with pytest.raises(InvalidRecord):
        store.add_case("   ")


def test_only_the_domain_type_itself_is_accepted(store):
    class LooksLikeAPrediction:  # has to_dict, but is not a models.types.Prediction
        def to_dict(self):
            return prediction("positive", 0.9).to_dict()

    case_id = store.add_case("Works great.").id
    with pytest.raises(InvalidRecord, match="must be a Prediction, not a LooksLikeAPrediction"):
        store.record_prediction(case_id, LooksLikeAPrediction())
    store.record_prediction(case_id, prediction("positive", 0.9))
    assert store.get_case(case_id).prediction.value.label == "positive"


# -- reviews -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("decision", "label", "reason", "meaning", "message"), [
    ("override", None, "looks mixed", "reviewed", "needs the label"),
    ("override", "neutral", None, "reviewed", "needs a reason"),
    ("override", "neutral", "   ", "reviewed", "needs a reason"),
    ("override", "sideways", "a reason", "reviewed", "not one of the model's labels"),
    ("override", "negative", "a reason", "reviewed", "accept the case instead"),
    ("accept", "neutral", None, "reviewed", "override it"),
    ("defer", "neutral", None, "reviewed", "give no label"),
    ("defer", None, None, "approved", "cannot be approved"),
    ("maybe", None, None, "reviewed", "decision must be one of"),
    ("accept", None, None, "signed", "signature must mean"),
])
def test_review_rules(store, decision, label, reason, meaning, message):
    case_id = scored_case(store, "Rules apply.")
    ann = signer(store, "ann")
    events = len(store.audit_events())
    with pytest.raises(InvalidReview, match=message):
        store.add_review(case_id, ann, decision, label, reason, meaning)
    assert store.latest_review(case_id) is None
    assert len(store.audit_events()) == events  # nothing half-written


def test_a_review_needs_a_prediction_to_accept(store):
    case_id = store.add_case("Not scored yet.").id
    with pytest.raises(InvalidReview, match="no prediction to accept"):
        store.add_review(case_id, signer(store, "ann"), "accept")


def test_a_later_review_supersedes_and_both_stay(store):
    case_id = scored_case(store, "Two reviewers.")
    first = store.add_review(case_id, signer(store, "ann"), "accept", meaning="reviewed")
    second = store.add_review(case_id, signer(store, "bob"), "override", "neutral",
                              "mixed feelings", meaning="approved")
    assert first.label == "negative"  # accept signs the model's label
    assert (second.supersedes_id, second.reviewer, second.label) == (first.id, "bob", "neutral")
    assert store.latest_review(case_id) == second
    assert store.get_case(case_id).reviews == (first, second)
    assert second.signed_at.endswith("+00:00") and second.signed_at >= first.signed_at


def test_a_review_signs_the_case_version_it_saw(store):
    case_id = scored_case(store, "Version check.")
    seen = store.get_case(case_id).version_sha256
    review = store.add_review(case_id, signer(store, "ann"), "accept", expected_sha256=seen)
    assert review.case_sha256 == seen
    assert store.get_case(case_id).version_sha256 == seen  # a review is not a new version

    store.record_prediction(case_id, prediction("neutral", 0.6))
    with pytest.raises(InvalidReview, match="changed since it was opened"):
        store.add_review(case_id, signer(store, "ann"), "accept", expected_sha256=seen)
    assert store.get_case(case_id).version_sha256 != seen


# -- the case list -------------------------------------------------------------------------------

@pytest.fixture()
def listed(store):
    """Six cases: labels, escalations, models and reviews to filter on."""
    ids = {
        "a": scored_case(store, "Terrible rash and pain.", "negative", 0.95, "auto"),
        "b": scored_case(store, "The rash faded, some relief.", "positive", 0.60, "escalate"),
        "c": scored_case(store, "Okay, unsure about the café visit.", "neutral", 0.70,
                         "escalate", model_id="m2"),
        "d": scored_case(store, "Wonderful relief, works well.", "positive", 0.90, "auto"),
        "e": scored_case(store, "Stopped it after the rashes.", "negative", 0.50, "escalate"),
        "f": store.add_case("Not scored yet.").id,
    }
    store.add_review(ids["a"], signer(store, "ann"), "accept")
    store.add_review(ids["b"], signer(store, "ann"), "override", "neutral", "relief is partial")
    store.add_review(ids["c"], signer(store, "bob"), "defer", reason="ask the ward")
    store.add_review(ids["e"], signer(store, "bob"), "accept")
    # supersedes the one before
    store.add_review(ids["e"], signer(store, "ann"), "override", "neutral", "second look")
    return ids


def _ids(page) -> set[int]:
    return {item.id for item in page.items}


def test_find_cases_filters_on_the_latest_records(store, listed):
    a, b, c, d, e, f = (listed[k] for k in "abcdef")
    assert _ids(store.find_cases(label="negative")) == {a, e}
    assert _ids(store.find_cases(escalated=True)) == {b, c, e}
    assert _ids(store.find_cases(escalated=False)) == {a, d}
    assert _ids(store.find_cases(decision="override")) == {b, e}
    assert _ids(store.find_cases(reviewed=True)) == {a, b, e}
    assert _ids(store.find_cases(reviewed=False)) == {c, d, f}
    assert _ids(store.find_cases(reviewer="ann")) == {a, b, e}  # e: Ann's review is the latest
    assert _ids(store.find_cases(model_id="m2")) == {c}
    assert _ids(store.find_cases(label="positive", escalated=True)) == {b}
    with pytest.raises(StoreError, match="escalated="):
        store.find_cases(decision="escalate")


def test_find_cases_summaries_carry_the_latest_review(store, listed):
    (summary,) = store.find_cases(reviewer="ann", label="negative", escalated=True).items
    assert summary.id == listed["e"]
    assert (summary.review.reviewer, summary.review.decision) == ("ann", "override")
    assert summary.review == store.latest_review(listed["e"])
    assert (summary.label, summary.escalation, summary.model_id) == ("negative", "escalate", "m1")
    assert summary.preview == "Stopped it after the rashes."


def test_find_cases_sorts_and_pages(store, listed):
    by_confidence = store.find_cases(sort="-confidence", label="positive")
    assert [i.id for i in by_confidence.items] == [listed["d"], listed["b"]]
    newest_first = [i.id for i in store.find_cases().items]
    assert newest_first == sorted(listed.values(), reverse=True)

    pages = [store.find_cases(sort="id", page=n, page_size=4) for n in (1, 2, 3)]
    assert [p.total for p in pages] == [6, 6, 6]
    assert [len(p.items) for p in pages] == [4, 2, 0]
    assert [i.id for p in pages for i in p.items] == sorted(listed.values())
    with pytest.raises(StoreError, match="Cannot sort"):
        store.find_cases(sort="colour")
    with pytest.raises(StoreError, match="page"):
        store.find_cases(page=0)


def test_find_cases_searches_the_text(store, listed):
    assert _ids(store.find_cases(search="rash")) == {listed["a"], listed["b"]}
    assert _ids(store.find_cases(search="rash*")) == {listed["a"], listed["b"], listed["e"]}
    assert _ids(store.find_cases(search="relief works")) == {listed["d"]}  # every word
    assert _ids(store.find_cases(search="cafe")) == {listed["c"]}  # accents folded
    assert _ids(store.find_cases(search='"rash ((')) == {listed["a"], listed["b"]}  # not FTS syntax
    assert _ids(store.find_cases(search="rash", escalated=True)) == {listed["b"]}
    ranked = store.find_cases(search="relief", sort="relevance")
    assert _ids(ranked) == {listed["b"], listed["d"]} and ranked.total == 2
    with pytest.raises(StoreError, match="relevance"):
        store.find_cases(sort="relevance")


def test_find_cases_searches_phrases(store, listed):
    assert _ids(store.find_cases(search='"rash and pain"')) == {listed["a"]}
    assert _ids(store.find_cases(search='"pain and rash"')) == set()  # words in that order
    assert _ids(store.find_cases(search='"the rash" faded')) == {listed["b"]}
    assert _ids(store.find_cases(search='"" rash')) == {listed["a"], listed["b"]}
    page = store.find_cases(search='"some relief"', sort="relevance")
    assert [i.id for i in page.items] == [listed["b"]] and page.total == 1


def test_find_cases_counts_every_page(store, listed):
    for page_size, pages in ((2, 3), (3, 2), (5, 2), (6, 1), (100, 1)):
        seen = [store.find_cases(sort="id", page=n, page_size=page_size)
                for n in range(1, pages + 2)]
        assert {p.total for p in seen} == {6}
        assert [i.id for p in seen for i in p.items] == sorted(listed.values())
    assert store.find_cases(search="rash", page=2, page_size=1).total == 2


def test_find_cases_by_date(store, listed):
    today = datetime.now(UTC).date()
    assert store.find_cases(date_from=today, date_to=today).total == 6
    assert store.find_cases(date_to=today - timedelta(days=1)).total == 0
    assert store.find_cases(date_from=(today + timedelta(days=1)).isoformat()).total == 0
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert store.find_cases(date_from=an_hour_ago).total == 6
    with pytest.raises(StoreError, match="not a date"):
        store.find_cases(date_from="yesterday")
