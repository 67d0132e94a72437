"""The second-opinion prompt: one versioned template, filled from the case and its evidence.

Every answer records the template version and the SHA-256 of the exact messages sent, so an
auditor can tell which wording produced it. The case text is trimmed (and the prompt says so)
when it would not fit the model's context; the evidence is never trimmed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROMPT_VERSION = "second-opinion/1"
CANNOT_TELL = "cannot tell"

SYSTEM = (
    "You assist a human reviewer who must decide a case and answer for the decision. "
    "A small classifier has already proposed a label. Read the case and the evidence, then give "
    "your own opinion. Be brief and factual; use only the case text. "
    "Reply with one JSON object and nothing else."
)

USER = """Case text{trim_note}:
\"\"\"
{text}
\"\"\"

Labels:
{labels}

The classifier's answer: {label} (calibrated probabilities: {probabilities}).
Labels it cannot rule out (90% prediction set): {prediction_set}.
Why the case was escalated: {reasons}.
Words that pushed the classifier towards {label} (+) or away from it (-): {words}.

Which label fits the case text? Answer with JSON only:
{{"explanation": "<two sentences about what the case text says>",
"label": "<{label_names} or {cannot_tell}>",
"words": ["<a word from the case text>", "<another word from the case text>"]}}"""

# One-line descriptions for the demo's labels; other label sets show the label alone unless the
# caller passes descriptions.
DEMO_DESCRIPTIONS = {
    "negative": "the patient reports the drug did not work or caused bad side effects",
    "neutral": "mixed or unclear experience with the drug",
    "positive": "the patient reports the drug worked well",
}


def label_descriptions(labels: Sequence[str]) -> dict[str, str]:
    """The one-line meaning of each label that has one (what the LLM's prompt shows too)."""
    return {label: DEMO_DESCRIPTIONS[label] for label in labels if label in DEMO_DESCRIPTIONS}


@dataclass(frozen=True)
class Evidence:
    """What the small model concluded and why, as the prompt shows it."""

    label: str
    probabilities: dict[str, float]
    prediction_set: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    top_words: tuple[tuple[str, float], ...] = ()  # (word, signed attribution), strongest first


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    version: str
    sha256: str
    case_chars_sent: int
    case_chars: int

    @property
    def trimmed(self) -> bool:
        return self.case_chars_sent < self.case_chars


def _fill(text: str, labels: Sequence[str], descriptions: dict[str, str], evidence: Evidence,
          trimmed: bool) -> list[dict[str, str]]:
    label_lines = "\n".join(f"- {lb}: {descriptions[lb]}" if descriptions.get(lb) else f"- {lb}"
                            for lb in labels)
    words = ", ".join(f"{w} ({v:+.2f})" for w, v in evidence.top_words) or "none computed"
    user = USER.format(
        trim_note=" (cut to fit: the end is missing)" if trimmed else "",
        text=text, labels=label_lines, label=evidence.label,
        probabilities=", ".join(f"{k} {v:.2f}" for k, v in evidence.probabilities.items()),
        prediction_set=", ".join(evidence.prediction_set) or "not computed",
        reasons="; ".join(evidence.reasons) or "the reviewer asked", words=words,
        label_names=", ".join(labels), cannot_tell=CANNOT_TELL)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


# How an in-process model's answer is started for it (explainers.second_opinion's guided
# steps): a 135M model keeps to JSON only when the answer is begun for it.
PREFILL = '{"explanation": "'


def build_prompt(text: str, labels: Sequence[str], evidence: Evidence,
                 descriptions: dict[str, str] | None = None,
                 fits: Callable[[list[dict[str, str]]], bool] | None = None) -> Prompt:
    """The messages for one case. ``fits`` says whether messages fit the model's context; the
    case text is cut (at a word boundary) until they do."""
    descriptions = DEMO_DESCRIPTIONS if descriptions is None else descriptions
    keep = len(text)
    messages = _fill(text, labels, descriptions, evidence, False)
    while fits is not None and not fits(messages) and keep > 0:
        keep = max(0, int(keep * 0.8))
        cut = text[:keep].rsplit(" ", 1)[0] if " " in text[:keep] else text[:keep]
        keep = len(cut)
        messages = _fill(cut + " ...", labels, descriptions, evidence, True)
    digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False).encode()).hexdigest()
    return Prompt(messages, PROMPT_VERSION, digest, keep, len(text))
