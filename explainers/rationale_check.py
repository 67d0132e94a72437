"""Does the LLM's rationale hold up against the small model? A counterfactual check.

The words the LLM cites are taken out of the case and the small model scores it again. If they
carry the label the LLM argues for, that label's probability falls; if it does not fall by
``DROP_THRESHOLD``, the cited words do not drive the small model's answer, and the pane says so.
Self-explanations of language models are often unfaithful (Madsen, Chandar and Reddy, "Are
self-explanations from Large Language Models faithful?", 2024); this check tests the
rationale against the one model in the room whose behaviour can be measured.
"""

from __future__ import annotations

import re
from dataclasses import replace

from explainers.types import Attribution, Finding, LLMOpinion, RationaleCheck
from models.classifier import Classifier

# The fall in probability (absolute) that counts as "the words carry the label": larger than
# the few hundredths removing any few words moves a confident answer.
DROP_THRESHOLD = 0.05
TOP_ATTRIBUTED = 8  # the evidence's top words (explainers.second_opinion.evidence_of)


def without_words(text: str, words: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """``text`` with every whole-word occurrence of ``words`` removed (any case), and the
    words that were found."""
    found = []
    for word in words:
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        if word.strip() and pattern.search(text):
            found.append(word)
            text = pattern.sub("", text)
    return " ".join(text.split()), tuple(found)


def rationale_check(classifier: Classifier, text: str, opinion: LLMOpinion,
                    attribution: Attribution | None) -> RationaleCheck | None:
    """The check of ``opinion``'s cited words (None when there is nothing to check: no label
    argued for, no cited word in the case, or nothing left without them). The case is scored
    with and without the words in one call of the same model: a prediction kept from another
    model, or another precision, would make part of the difference."""
    label = opinion.label if opinion.label in classifier.labels else None
    if label is None or opinion.error:
        return None
    reduced, removed = without_words(text, opinion.cited_words)
    if not removed or not reduced.strip():
        return None
    before, after = (p.probabilities[label] for p in classifier.predict_batch([text, reduced]))
    top = _top_words(attribution)
    among = sum(1 for word in removed if word.lower() in top)
    return RationaleCheck(label, removed, float(before), float(after), DROP_THRESHOLD, among,
                          len(top))


def _top_words(attribution: Attribution | None) -> set[str]:
    if attribution is None:
        return set()
    cls = attribution.label
    ranked = sorted(attribution.features, key=lambda f: -abs(f.values[cls]))[:TOP_ATTRIBUTED]
    return {f.text.lower() for f in ranked}


def with_rationale_check(classifier: Classifier, text: str, opinion: LLMOpinion,
                         attribution: Attribution | None) -> LLMOpinion:
    """``opinion`` with its rationale check and the finding that says it (in the pane, the
    terminal and the PDF, as the other findings are)."""
    if opinion.error and not opinion.label:
        return opinion
    check = rationale_check(classifier, text, opinion, attribution)
    if check is None:
        finding = Finding("rationale_unchecked", "note", _why_unchecked(opinion, classifier))
    else:
        finding = Finding("rationale" if check.holds else "rationale_not_driving",
                          "note" if check.holds else "warning", check.sentence())
    return replace(opinion, rationale=check, check=(*opinion.check, finding))


def _why_unchecked(opinion: LLMOpinion, classifier: Classifier) -> str:
    if opinion.error:
        return "No rationale check: the answer is incomplete."
    if opinion.label not in classifier.labels:
        return ("No rationale check: the AI argues for none of the labels, so there is no "
                "label whose probability its words should move.")
    if not opinion.cited_words:
        return "No rationale check: the AI cites no words."
    return ("No rationale check: none of the words the AI cites is a word of the case (or "
            "nothing of the case is left without them).")
