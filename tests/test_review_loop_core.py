"""The review loop's core, on a real SQLite history: the queue never traps a reviewer on a
deferred case, a blind judgement is recorded as a judgement (an audit event, not a signature)
that the later signature covers, and an LLM answer that fails its checks is no opinion."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.review_queue import next_in_queue, revisit
from app.store import StoreError
from explainers.opinion_check import check_answer, opinion_problem, parse_answer
from explainers.types import Finding
from tests.helpers.accounts import signer
from tests.store_helpers import opinion, prediction


def _cases(store, count: int) -> list[int]:
    """``count`` new cases (each text new to the history)."""
    start = store.find_cases(page_size=1).total
    return [store.add_case(f"case number {i} about a rash", "test", prediction=prediction())
            .case_id for i in range(start, start + count)]


def test_the_queue_skips_what_was_deferred_here_and_offers_it_again(store):
    first, second, third = _cases(store, 3)
    ann = signer(store, "ann")
    assert next_in_queue(store).case_id == first

    store.add_review(first, ann, "defer")
    here = frozenset({first})
    step = next_in_queue(store, here)
    # Before: the oldest case with no accepting review came back, the deferred one, forever.
    assert step.case_id == second and not step.revisiting
    assert (step.never_reviewed, step.deferred, step.skipped) == (2, 1, 1)
    assert "1 deferred (1 by you this session, skipped)" in step.describe()

    store.add_review(second, ann, "accept")
    store.add_review(third, ann, "defer")
    here = frozenset({first, third})
    assert next_in_queue(store, here).case_id is None  # nothing but this session's deferrals
    assert revisit(store, here).case_id == first
    assert revisit(store, here, after=first).case_id == third
    assert revisit(store, here, after=third).case_id == first  # round again

    # A new session (a restart): cases deferred before come after the never-reviewed ones.
    (fourth,) = _cases(store, 1)
    assert next_in_queue(store).case_id == fourth
    step = next_in_queue(store, after=fourth)
    assert step.case_id == first and step.revisiting


def test_revisit_leaves_out_a_case_someone_has_decided_since(store):
    first, second = _cases(store, 2)
    ann = signer(store, "ann")
    for case_id in (first, second):
        store.add_review(case_id, ann, "defer")
    store.add_review(first, ann, "accept")
    step = revisit(store, frozenset({first, second}))
    assert step.case_id == second and step.skipped == 1


def test_a_blind_judgement_is_an_event_the_signature_covers(store):
    (case_id,) = _cases(store, 1)
    judgement = store.record_judgement(case_id, "neutral", "  sounds mixed ", "ann")
    assert (judgement.label, judgement.note, judgement.judge) == ("neutral", "sounds mixed",
                                                                  "ann")
    record = store.get_case(case_id)
    assert record.judgements == (judgement,) and not record.reviews
    assert store.record_judgement(case_id, None, "", "ann").label is None  # cannot tell
    with pytest.raises(StoreError, match="not one of the model's labels"):
        store.record_judgement(case_id, "unicorn", "", "ann")

    review = store.add_review(case_id, signer(store, "ann"), "accept")
    assert review.signature.verified and review.signature.head_id > judgement.event_id
    assert store.verify_chain().ok


def test_an_answer_that_fails_its_checks_is_no_usable_opinion():
    good = opinion()
    assert opinion_problem(good) is None
    invented = replace(good, check=(Finding("not_in_text", "warning",
                                            "'pregnancy' is cited but does not occur."),))
    assert opinion_problem(invented).startswith("'pregnancy' is cited")
    assert opinion_problem(replace(good, parse="none")) == "the answer could not be read"
    assert opinion_problem(replace(good, text="Ok.")) == \
        "the answer gives no explanation to check"
    assert opinion_problem(replace(good, label=None, error="timed out.")) == "timed out"
    # A disagreeing answer is still an opinion: the reviewer must see the disagreement.
    disagrees = replace(good, check=(Finding("disagrees", "warning", "differs"),))
    assert opinion_problem(disagrees) is None


def test_markup_is_never_a_cited_word():
    answer = parse_answer('{"explanation": "x", "label": "positive", '
                          '"words": ["nausea", "</positive"]}')
    _label, findings = check_answer(answer, "nausea all day", ["negative", "positive"],
                                    "positive")
    kinds = [f.kind for f in findings]
    assert "markup" in kinds and "not_in_text" not in kinds
