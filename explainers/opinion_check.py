"""Read an LLM's answer leniently and check it against the evidence.

Small models often write broken JSON (code fences, single quotes, trailing commas, a missing
closing brace, prose around it). The parser recovers what it can, field by field, and says how
it got there; when nothing can be recovered the raw text is kept for the reviewer.

The check compares the answer with the case: cited words that are not in the text, a label
outside the label set, disagreement with the classifier, and cited words whose attribution
pushes the other way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from explainers.prompts import CANNOT_TELL
from explainers.types import Finding, LLMOpinion

# Findings that make an answer no usable second opinion: a reviewer reads that first, before
# any label (an answer that invents words or contradicts the attributions is not evidence).
# The worst first: the first of them found is the one the reviewer reads.
UNUSABLE = ("unparsed", "not_in_text", "unknown_label", "opposite_sign", "markup")
MIN_EXPLANATION_WORDS = 4
# Anything that looks like a tag or a piece of one ("</positive", "<s>"): never a cited word.
MARKUP = re.compile(r"[<>]|&[a-z]+;")


@dataclass(frozen=True)
class ParsedAnswer:
    explanation: str | None
    label: str | None
    cited_words: tuple[str, ...]
    parse: str  # "json", "repaired", "fields" or "none"


def _candidates(raw: str) -> list[str]:
    fenced = re.findall(r"```(?:json)?\s*(.*?)```", raw, flags=re.DOTALL)
    start = raw.find("{")
    tail = [raw[start:]] if start >= 0 else []
    return [*fenced, *tail]


def _repair(text: str) -> str:
    text = text.strip()
    end = text.rfind("}")
    text = text[: end + 1] if end >= 0 else text + ("}" if text.count("{") > text.count("}")
                                                     else "")
    text = re.sub(r",\s*([}\]])", r"\1", text)  # trailing commas
    text = re.sub(r"(?<=[{,])\s*([A-Za-z_]+)\s*:", r'"\1":', text)  # unquoted keys
    if '"' not in text:
        text = text.replace("'", '"')
    if text.count("[") > text.count("]"):
        text = text.rstrip("}") + "]}"
    return text


def _from_object(data: dict) -> tuple[str | None, str | None, tuple[str, ...]]:
    explanation = data.get("explanation") or data.get("reason") or data.get("rationale")
    label = data.get("label") or data.get("answer")
    words = data.get("words") or data.get("cited_words") or data.get("evidence") or []
    if isinstance(words, str):
        words = [w.strip() for w in words.split(",")]
    cited = dict.fromkeys(str(w).strip() for w in words if str(w).strip())
    return (str(explanation).strip() if explanation else None,
            str(label).strip() if label else None, tuple(cited))


def without_markup(words: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the cited words, the pieces of markup dropped from them)."""
    kept = tuple(w for w in words if not MARKUP.search(w))
    return kept, tuple(w for w in words if MARKUP.search(w))


def _field(raw: str, name: str) -> str | None:
    match = re.search(rf'["\']?{name}["\']?\s*:\s*["\']([^"\']*)', raw, flags=re.IGNORECASE)
    return match.group(1).strip() if match else None


def parse_answer(raw: str) -> ParsedAnswer:
    for candidate in _candidates(raw):
        for parse, text in (("json", candidate), ("repaired", _repair(candidate))):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict):
                return ParsedAnswer(*_from_object(data), parse=parse)
    explanation, label = _field(raw, "explanation"), _field(raw, "label")
    words_match = re.search(r'words["\']?\s*:\s*\[([^\]]*)', raw, flags=re.IGNORECASE)
    words = tuple(dict.fromkeys(w.strip(" \"'\n") for w in words_match.group(1).split(",")
                                if w.strip(" \"'\n"))) if words_match else ()
    if explanation or label or words:
        return ParsedAnswer(explanation, label, words, "fields")
    return ParsedAnswer(raw.strip() or None, None, (), "none")


def normalise_label(label: str | None, labels: list[str]) -> str | None:
    """The label set's spelling of the LLM's label, CANNOT_TELL, or None if it is neither."""
    if label is None:
        return None
    cleaned = label.strip().strip(".\"'").lower()
    for known in labels:
        if cleaned == known.lower():
            return known
    if cleaned in {CANNOT_TELL, "cannot_tell", "unknown", "unsure", "can't tell"}:
        return CANNOT_TELL
    return None


def check_answer(answer: ParsedAnswer, case_text: str, labels: list[str],
                 classifier_label: str, word_values: dict[str, float] | None = None
                 ) -> tuple[str | None, list[Finding]]:
    """The LLM's label in the label set's spelling, and the findings a reviewer should see.

    ``word_values`` maps words of the case to their attribution for the classifier's label."""
    findings = []
    if answer.parse == "none":
        findings.append(Finding("unparsed", "warning", "The answer could not be read as JSON; "
                                "its raw text is shown as written."))
    elif answer.parse in {"repaired", "fields"}:
        findings.append(Finding("repaired", "note", "The answer's JSON was broken; its fields "
                                "were recovered."))
    cited, markup = without_markup(answer.cited_words)
    if markup:
        findings.append(Finding("markup", "warning", "The answer cites pieces of markup, not "
                                f"words of the case: {', '.join(repr(m) for m in markup)}."))
    label = normalise_label(answer.label, labels)
    if answer.label is not None and label is None:
        findings.append(Finding("unknown_label", "warning", f"The LLM chose '{answer.label}', "
                                f"which is not one of the labels ({', '.join(labels)})."))
    if label is not None and label not in {CANNOT_TELL, classifier_label}:
        findings.append(Finding("disagrees", "warning", f"The LLM chose '{label}'; the "
                                f"classifier chose '{classifier_label}'."))
    lowered = case_text.lower()
    for word in cited:
        if word.lower() not in lowered:
            findings.append(Finding("not_in_text", "warning",
                                    f"'{word}' is cited but does not occur in the case text."))
    if word_values and label == classifier_label:
        values = {w.lower(): v for w, v in word_values.items()}
        for word in cited:
            value = values.get(word.lower())
            if value is not None and value < 0:
                findings.append(Finding(
                    "opposite_sign", "warning", f"'{word}' is cited for '{label}', but in the "
                    f"attributions it pushes away from it ({value:+.3f})."))
    return label, findings


def opinion_problem(opinion: LLMOpinion) -> str | None:
    """Why ``opinion`` is no usable second opinion, as the end of a sentence ("no usable
    opinion: ..."); None when it was read, names a label and passed its checks."""
    if opinion.error and not opinion.label:
        return opinion.error.rstrip(".")
    if opinion.parse == "none":
        return "the answer could not be read"
    blocking = sorted((f for f in opinion.check if f.kind in UNUSABLE),
                      key=lambda f: UNUSABLE.index(f.kind))
    if blocking:
        more = f" (and {len(blocking) - 1} more problem(s) below)" if len(blocking) > 1 else ""
        return blocking[0].message.rstrip(".") + more
    if not opinion.label:
        return "the answer names no label"
    if len(opinion.text.split()) < MIN_EXPLANATION_WORDS:
        return "the answer gives no explanation to check"
    return None
