"""The store's typed seam: only Prediction, EscalationDecision, Attribution and LLMOpinion go
in, each comes back as itself (``StoredRecord.value``), every write returns what it stored
(``CaseWrite``: ids, the version a reviewer signs, the case's list row), and a resumed batch
reads how far each case got (``case_progress``) and writes in bulk (``record_many``)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from app.store import (
    CaseNotFound,
    CaseWrite,
    InvalidRecord,
    NewCase,
    Review,
    ReviewRecord,
    StoredRecord,
)
from explainers.types import Attribution, Faithfulness, Feature, Finding, Flip, LLMOpinion
from models.types import SCHEMA_KEY, EscalationDecision, ModelCard, Prediction, RecordError
from tests.helpers.accounts import signer
from tests.store_helpers import attribution, escalation, opinion, prediction

KINDS = ("prediction", "attribution", "escalation", "opinion")
HELPERS = {"prediction": prediction, "attribution": attribution, "escalation": escalation,
           "opinion": opinion}
RECORDERS = {"prediction": "record_prediction", "attribution": "record_attribution",
             "escalation": "record_escalation", "opinion": "record_opinion"}

pytestmark = pytest.mark.both_backends


def scored(store, text: str = "The rash came back.") -> int:
    return store.add_case(text, prediction=prediction(), escalation=escalation()).id


def list_row(store, case_id: int):
    """The case's row as the case list shows it (``find_cases``)."""
    rows = [s for s in store.find_cases(sort="id", page_size=500).items if s.id == case_id]
    assert len(rows) == 1
    return rows[0]


def assert_current(store, write: CaseWrite) -> None:
    """What a write returned is what a reader sees right after it."""
    assert isinstance(write, CaseWrite)
    assert write.version_sha256 == store.get_case(write.case_id).version_sha256
    assert write.summary == list_row(store, write.case_id)
    assert write.id == write.case_id


# -- 1. only the domain types go in ---------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_a_dict_is_refused_for_every_kind_of_record(store, kind):
    case_id = scored(store)
    events = len(store.audit_events())
    data = HELPERS[kind]().to_dict()  # even the exact dict the type would store
    with pytest.raises(InvalidRecord, match=r"must be a \w+, not a dict.*from_dict"):
        getattr(store, RECORDERS[kind])(case_id, data)
    assert len(store.audit_events()) == events
    already = 1 if kind in ("prediction", "escalation") else 0  # what scored() stored
    assert len(getattr(store.get_case(case_id), f"{kind}s")) == already


@pytest.mark.parametrize(("kind", "argument"), [("prediction", "prediction"),
                                                 ("escalation", "escalation")])
def test_add_case_refuses_a_dict_and_stores_nothing(store, kind, argument):
    with pytest.raises(InvalidRecord, match="not a dict"):
        store.add_case("Dict in.", **{argument: HELPERS[kind]().to_dict()})
    assert store.case_id_for_text("Dict in.") is None
    assert store.audit_events() == ()


def test_base_values_as_a_list_never_reach_the_history(store):
    """The bug: the store took any mapping, so a fixture stored base_values as a list, a
    record no reader could open. Now the dict is refused by the type and by the store."""
    bad = {**attribution().to_dict(), "base_values": [0.3]}
    with pytest.raises(RecordError, match="'base_values' must be a dict, not a list"):
        Attribution.from_dict(bad)
    case_id = scored(store)
    events = len(store.audit_events())
    with pytest.raises(InvalidRecord, match="must be a Attribution, not a dict"):
        store.record_attribution(case_id, bad)
    assert store.get_case(case_id).attributions == ()
    assert len(store.audit_events()) == events


@pytest.mark.parametrize(("kind", "broken", "message"), [
    ("attribution", {"base_values": [0.3]}, "not a well-formed Attribution"),
    ("prediction", {"label": "sideways"}, "would not read back.*not among its probabilities"),
    ("prediction", {"probabilities": [0.8, 0.2]}, "would not read back.*must be a dict"),
    ("escalation", {"decision": "perhaps"}, "must be 'auto' or 'escalate', not 'perhaps'"),
    ("opinion", {"check": ({"kind": "x"},)}, "not a well-formed LLMOpinion"),
])
def test_an_object_of_the_type_with_fields_of_the_wrong_shape_is_refused(store, kind, broken,
                                                                         message):
    """Dataclasses do not check their fields: the store checks the record reads back, so the
    append-only history never keeps one nobody can open (and says why, as InvalidRecord)."""
    case_id = scored(store)
    events = len(store.audit_events())
    with pytest.raises(InvalidRecord, match=message):
        getattr(store, RECORDERS[kind])(case_id, replace(HELPERS[kind](), **broken))
    assert len(store.audit_events()) == events
    assert store.verify_chain().ok


# -- 2. every write returns the version and list row a reader sees next ----------------------------

def test_every_single_write_returns_the_current_version_and_list_row(store):
    first = store.add_case("Versions.", "csv", {"row": 1})
    assert (first.new, first.record_ids, first.review) == (True, {}, None)
    assert_current(store, first)
    case_id = first.case_id

    versions = [first.version_sha256]
    for kind in KINDS:
        write = getattr(store, RECORDERS[kind])(case_id, HELPERS[kind]())
        assert not write.new
        assert write.record_ids == {kind: getattr(store.get_case(case_id), kind).id}
        assert_current(store, write)
        versions.append(write.version_sha256)
    assert len(set(versions)) == len(versions)  # each record makes a new version

    analysis = store.record_analysis(case_id, prediction("positive", 0.9, "m2"),
                                     escalation("auto"))
    case = store.get_case(case_id)
    assert analysis.record_ids == {"prediction": case.prediction.id,
                                   "escalation": case.escalation.id}
    assert (analysis.summary.label, analysis.summary.model_id,
            analysis.summary.escalation) == ("positive", "m2", "auto")
    assert_current(store, analysis)
    assert case.events[-1].payload["prediction_id"] == case.prediction.id
    only_prediction = store.record_analysis(case_id, prediction("neutral", 0.7), None)
    assert set(only_prediction.record_ids) == {"prediction"}
    assert_current(store, only_prediction)

    # the version a write returns is the one a reviewer can sign
    signed = store.review_case(case_id, signer(store, "ann"), "accept",
                               expected_sha256=only_prediction.version_sha256)
    assert signed.version_sha256 == only_prediction.version_sha256  # a review is no version
    assert signed.review == store.latest_review(case_id)
    assert signed.record_ids == {"review": signed.review.id}
    assert signed.summary.review == signed.review
    assert_current(store, signed)

    again = store.add_case("Versions.", prediction=prediction())
    assert (again.case_id, again.new, again.record_ids) == (case_id, False, {})
    assert_current(store, again)


def test_record_many_returns_each_case_as_it_now_is(store):
    a, b = scored(store, "Case a."), scored(store, "Case b.")
    writes = store.record_many([(a, attribution()), (b, opinion()), (a, opinion())])
    assert [w.case_id for w in writes] == [a, b]  # one per case, in the order first met
    case_a, case_b = store.get_case(a), store.get_case(b)
    assert writes[0].record_ids == {"attribution": case_a.attribution.id,
                                    "opinion": case_a.opinion.id}
    assert writes[1].record_ids == {"opinion": case_b.opinion.id}
    for write in writes:
        assert not write.new
        assert_current(store, write)
    assert store.record_many([]) == []


def test_add_cases_returns_versions_and_rows_for_new_and_stored_texts(store):
    before = store.add_case("Stored before.", prediction=prediction(),
                            escalation=escalation("auto"))
    store.add_review(before.case_id, signer(store, "ann"), "accept")
    items = [NewCase("Stored before.", prediction=prediction("positive", 0.9)),
             NewCase("New with a result.", "csv", {"row": 2}, prediction(), escalation()),
             NewCase("New and bare."),
             NewCase("New with a result.", prediction=prediction("neutral", 0.6))]
    writes = store.add_cases(items)
    assert [w.new for w in writes] == [False, True, True, False]
    assert writes[0].case_id == before.case_id and writes[0].record_ids == {}
    assert writes[3].case_id == writes[1].case_id and writes[3].record_ids == {}
    stored = store.get_case(writes[1].case_id)
    assert writes[1].record_ids == {"prediction": stored.prediction.id,
                                    "escalation": stored.escalation.id}
    assert writes[2].record_ids == {}
    for write in writes:
        assert_current(store, write)
    assert writes[0].summary.review == store.latest_review(before.case_id)
    assert writes[0].version_sha256 == before.version_sha256  # nothing stored for it
    # a version computed for a new case is one a reviewer can sign
    store.add_review(writes[1].case_id, signer(store, "bob"), "accept",
                     expected_sha256=writes[1].version_sha256)
    assert store.verify_chain().ok


# -- 3. StoredRecord.value gives back the object that was stored -----------------------------------

def rich_records() -> dict[str, object]:
    """One of each type with the optional parts filled in (and some left None)."""
    return {
        "prediction": replace(prediction("positive", 0.7), prediction_set=None, truncated=True),
        "attribution": replace(attribution(), final=False, flip=Flip(
            ("rash",), ((4, 8),), "neutral", 3, 5)),
        "escalation": replace(escalation("auto"), threshold=None, reasons=(), reason_codes=(),
                              prediction_set=("negative", "neutral")),
        "opinion": replace(opinion(), base_url="http://localhost:8080/v1",
                           check=(Finding("not_in_text", "warning", "'fever' is not in it"),),
                           redactions=({"kind": "email", "count": 1},), tokens_in=None,
                           error="cut short"),
    }


@pytest.mark.parametrize("variant", ["plain", "rich"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_stored_record_reads_back_as_the_object_stored(store, kind, variant):
    record = HELPERS[kind]() if variant == "plain" else rich_records()[kind]
    case_id = scored(store)
    getattr(store, RECORDERS[kind])(case_id, record)
    stored = getattr(store.get_case(case_id), kind)
    assert stored.data == record.to_dict()  # as JSON keeps it: tuples are lists
    assert stored.value == record  # ... and the object, tuples and all
    assert type(stored.value) is type(record)
    assert stored.value.to_dict() == stored.data
    assert stored.data[SCHEMA_KEY] == type(record).SCHEMA_VERSION


def test_values_of_a_scored_case_are_usable_objects(store):
    case = store.get_case(scored(store))
    assert isinstance(case.prediction.value, Prediction)
    assert case.prediction.value.confidence == pytest.approx(0.8)
    assert isinstance(case.escalation.value, EscalationDecision) and case.escalation.value.escalated
    assert case.escalation.value.ood_threshold == float("inf")


def test_a_review_round_trips_and_keeps_its_old_name(store):
    case_id = scored(store)
    review = store.add_review(case_id, signer(store, "ann"), "override", "neutral",
                              "reads as neutral")
    assert ReviewRecord is Review
    assert Review.from_dict(review.to_dict()) == review
    assert review.to_dict()[SCHEMA_KEY] == Review.SCHEMA_VERSION
    assert store.get_case(case_id).reviews == (review,)


# -- 4. schema versions ----------------------------------------------------------------------------

def every_type(store) -> list[object]:
    case_id = scored(store)
    return [prediction(), escalation(), attribution(), opinion(),
            ModelCard("m1", "2026-01-01", ("negative", "positive"), limitations=("short",)),
            store.add_review(case_id, signer(store, "ann"), "accept")]


def test_a_record_from_a_newer_casewise_is_refused_with_what_to_do(store):
    for record in every_type(store):
        newer = {**record.to_dict(), SCHEMA_KEY: type(record).SCHEMA_VERSION + 1}
        with pytest.raises(RecordError, match=r"newer Casewise.*update Casewise"):
            type(record).from_dict(newer)


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_a_schema_version_that_is_not_a_version_is_refused(version):
    data = {**prediction().to_dict(), SCHEMA_KEY: version}  # a key given must be a number
    with pytest.raises(RecordError, match="not a version"):
        Prediction.from_dict(data)


def test_a_record_without_a_schema_version_reads_as_version_one(store):
    for record in every_type(store):
        data = record.to_dict()
        del data[SCHEMA_KEY]
        assert type(record).from_dict(data) == record


def test_a_stored_record_from_before_versions_opens_and_a_newer_one_says_update(store):
    """A history written before records carried a version still opens; a record a newer
    Casewise wrote (a shared store, an upgrade rolled back) says to update, not crash."""
    class OldPrediction(Prediction):  # writes what Casewise wrote before schema versions
        def to_dict(self):
            data = super().to_dict()
            del data[SCHEMA_KEY]
            return data

    original = prediction("neutral", 0.6)
    case_id = store.add_case("Before versions.").id
    store.record_prediction(case_id, OldPrediction(
        **{f.name: getattr(original, f.name) for f in fields(original)}))
    stored = store.get_case(case_id).prediction
    assert SCHEMA_KEY not in stored.data
    assert stored.value == original
    assert store.verify_chain().ok

    newer = StoredRecord(stored.id, "prediction", case_id, stored.created, stored.sha256,
                         {**stored.data, SCHEMA_KEY: Prediction.SCHEMA_VERSION + 1})
    with pytest.raises(RecordError, match="update Casewise"):
        _ = newer.value


# -- 5. case_progress: what a resumed batch still has to do ----------------------------------------

def test_case_progress_follows_the_latest_prediction(store):
    text = "The rash came back after the second dose."
    case_id = store.add_case(text, prediction=prediction(model_id="m1"),
                             escalation=escalation("escalate")).id
    bare = store.add_case("Not scored yet.").id

    progress = store.case_progress([text, "Not scored yet.", "Never stored."])
    assert set(progress) == {text, "Not scored yet."}  # texts not stored are left out
    first = progress[text]
    assert (first.case_id, first.model_id, first.explained, first.asked, first.escalated) == \
        (case_id, "m1", False, False, True)
    unscored = progress["Not scored yet."]
    assert (unscored.case_id, unscored.model_id, unscored.explained, unscored.asked,
            unscored.escalated) == (bare, None, False, False, None)

    store.record_attribution(case_id, attribution())
    assert store.case_progress([text])[text].explained is True

    store.record_analysis(case_id, prediction("positive", 0.9, model_id="m2"),
                          escalation("auto"))
    again = store.case_progress([text])[text]
    assert (again.model_id, again.explained, again.escalated) == ("m2", False, False)

    store.record_opinion(case_id, opinion())
    asked = store.case_progress([text])[text]
    assert (asked.asked, asked.explained) == (True, False)
    store.record_many([(case_id, attribution())])
    assert store.case_progress([text])[text].explained is True
    assert store.case_progress([]) == {}


def test_an_opinion_that_is_an_error_does_not_count_as_asked(store):
    """A failed LLM call is stored (the trail shows it was tried) but a resumed batch asks
    again: only an answer counts."""
    text = "The LLM timed out on this one."
    case_id = scored(store, text)
    store.record_opinion(case_id, replace(opinion(), label=None, text="", error="timed out"))
    assert store.case_progress([text])[text].asked is False
    store.record_opinion(case_id, opinion())
    assert store.case_progress([text])[text].asked is True


def test_case_progress_reads_a_whole_batch_of_texts(store):
    """More texts than one lookup chunk, most of them stored, some explained."""
    texts = [f"Case {i} of a long batch." for i in range(1200)]
    writes = store.add_cases([NewCase(t, prediction=prediction()) for t in texts[:1100]])
    store.record_many([(w.case_id, attribution()) for w in writes[::3]])
    progress = store.case_progress(texts)
    assert len(progress) == 1100
    assert [progress[t].case_id for t in texts[:1100]] == [w.case_id for w in writes]
    assert [t for t in texts[:1100] if progress[t].explained] == texts[:1100:3]
    assert not any(p.asked for p in progress.values())


# -- 6. record_many is all or nothing -------------------------------------------------------------

@pytest.mark.parametrize(("bad", "error", "message"), [
    ((999_999, "attribution"), CaseNotFound, "999999"),
    ((None, "dict"), InvalidRecord, "not dict"),
    ((None, "prediction"), InvalidRecord, "attributions and opinions, not Prediction"),
    ((None, "broken"), InvalidRecord, "not a well-formed Attribution"),
])
def test_record_many_stores_all_or_nothing(store, bad, error, message):
    ids = [scored(store, f"Case {i}.") for i in range(3)]
    events = store.audit_events()
    bad_id, what = bad
    record = {"attribution": attribution(), "dict": attribution().to_dict(),
              "prediction": prediction(),
              "broken": replace(attribution(), base_values=[0.3])}[what]
    items = [(ids[0], attribution()), (ids[1], opinion()),
             (bad_id if bad_id is not None else ids[2], record), (ids[2], opinion())]
    with pytest.raises(error, match=message):
        store.record_many(items)
    assert store.audit_events() == events
    for case_id in ids:
        case = store.get_case(case_id)
        assert (case.attributions, case.opinions) == ((), ())
    assert not any(p.explained or p.asked
                   for p in store.case_progress([f"Case {i}." for i in range(3)]).values())
    assert tuple(store.verify_chain()) == (True, len(events), None)
    # the same items without the bad one go in, and the chain still holds
    store.record_many([items[0], items[1], items[3]])
    assert tuple(store.verify_chain()) == (True, len(events) + 3, None)


def test_record_many_explains_each_case_s_latest_prediction(store):
    a, b = scored(store, "Case a."), scored(store, "Case b.")
    store.record_prediction(b, prediction("neutral", 0.6))
    store.record_many([(a, attribution()), (b, attribution())])
    for case_id in (a, b):
        case = store.get_case(case_id)
        explained = case.events[-1]
        assert explained.kind == "explained"
        assert explained.payload["prediction_id"] == case.prediction.id
    assert store.verify_chain().ok


def test_the_helpers_build_the_seam_types():
    assert isinstance(attribution().features[0], Feature)
    assert isinstance(attribution().faithfulness, Faithfulness)
    assert isinstance(opinion(), LLMOpinion)
