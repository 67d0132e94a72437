"""The counterfactual check of an LLM's rationale (explainers/rationale_check.py): the words it
cites are taken out of the case and the tiny trained classifier scores it again. Words that
carry the label move its probability; filler words do not; the result travels with the opinion
through the pipeline into the case history and the audit PDF."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from app.casework import load_workbench
from app.pipeline import ASK_ALWAYS, Steps, run_case
from app.reports import export_cases, model_card_loader
from app.store import open_store
from explainers.rationale_check import DROP_THRESHOLD, rationale_check, without_words
from explainers.second_opinion import failed_opinion
from explainers.types import LLMOpinion
from models.llm.openai_backend import OpenAICompatibleBackend
from models.types import CaseInput
from tests.helpers.llm_server import serving
from tests.helpers.pdf import text_of

CASE = "the medicine was awful and my doctor was happy, it took weeks"


@pytest.fixture(scope="module")
def bench(trained_home):
    return load_workbench(trained_home)


def opinion(label: str | None, words: tuple[str, ...]) -> LLMOpinion:
    return replace(failed_opinion("openai", "scripted", None, ""), error=None, label=label,
                   cited_words=words, text="An explanation of some length.", parse="json")


def test_whole_words_are_removed_in_any_case():
    text, found = without_words("Awful, awfully awful! The rash.", ("awful", "itch", "RASH"))
    assert text == ", awfully ! The ." and found == ("awful", "RASH")


def test_words_whose_removal_moves_the_label_hold_and_others_do_not(bench):
    """The tiny model is no oracle of which words should matter, so the test finds, with the
    classifier itself, one word whose removal drops the label's probability by the threshold
    and one whose removal does not; the check must tell them apart, with its numbers."""
    classifier = bench.classifier
    prediction = classifier.predict(CASE)
    label, before = prediction.label, prediction.probabilities[prediction.label]
    drops = {}
    for word in dict.fromkeys(CASE.replace(",", "").split()):
        reduced, _ = without_words(CASE, (word,))
        drops[word] = before - classifier.predict(reduced).probabilities[label]
    carrying = max(drops, key=drops.get)
    idle = min(drops, key=lambda w: abs(drops[w]))
    assert drops[carrying] >= DROP_THRESHOLD > abs(drops[idle])
    held = rationale_check(classifier, CASE, opinion(label, (carrying,)), None)
    assert held.holds and held.drop == pytest.approx(drops[carrying], abs=1e-4)
    assert held.before == pytest.approx(before, abs=1e-4) and held.removed == (carrying,)
    assert "they drive its answer" in held.sentence()
    idle_check = rationale_check(classifier, CASE, opinion(label, (idle,)), None)
    assert not idle_check.holds
    assert "do not drive the small model's answer" in idle_check.sentence()


@pytest.mark.parametrize("label, words", [("cannot tell", ("awful",)), ("negative", ()),
                                          ("negative", ("unicorn",))])
def test_nothing_to_check_is_said_not_guessed(bench, label, words):
    assert rationale_check(bench.classifier, CASE, opinion(label, words), None) is None


def test_the_check_goes_with_the_opinion_to_the_history_and_the_pdf(bench, trained_home,
                                                                     tmp_path):
    answer = {"explanation": "The patient is happy.", "label": "positive",
              "words": ["happy", "doctor"]}
    with serving() as server, open_store(tmp_path / "cases.db", actor="tester") as store:
        server.script = [json.dumps(answer)]
        backend = OpenAICompatibleBackend(server.url, "scripted", timeout=5.0, max_retries=0)
        from app.pipeline import LLMChoice

        llm = LLMChoice(lambda: backend, "openai", "scripted", server.url)
        result = run_case(bench, CaseInput(CASE, "typed"), store=store, llm=llm,
                          steps=Steps(ask=ASK_ALWAYS))
        check = result.opinion.rationale
        assert check is not None and check.removed == ("happy", "doctor")
        # "happy" is among the most attributed words (top 8 features; fewer distinct words).
        assert 0 < check.top_k <= 8 and check.among_top >= 1
        kinds = {f.kind for f in result.opinion.check}
        assert kinds & {"rationale", "rationale_not_driving"}
        stored = store.get_case(result.case_id).opinion.value
        assert stored.rationale == check
        pdf = export_cases(store, [result.case_id], tmp_path / "case.pdf",
                           model_card_for=model_card_loader(trained_home))
    assert "Without the words the AI cites" in text_of(pdf.path)
