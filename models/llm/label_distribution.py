"""The LLM's label as a distribution over the label set, not only the label it wrote.

In-process, each label's likelihood as the continuation of the answer is computed directly
(``TransformersBackend.option_scores``). From a server, only what it returns can be read: the
top log-probabilities (``logprobs``/``top_logprobs`` of chat completions: OpenAI, vLLM,
llama.cpp's server, Ollama) at the token where the label begins. Each alternative token there
is matched to the labels it could begin, its probability shared among them, and the matched
mass renormalised; ``covered`` says how much of the probability that was. A server that returns
no log-probabilities (``transformers serve`` ignores the request) gives no distribution, and
the opinion says so.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LABEL_VALUE = re.compile(r'"label"\s*:\s*"')


@dataclass(frozen=True)
class TokenChoice:
    """One generated token with its log-probability and the server's top alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class LabelDistribution:
    probabilities: dict[str, float]
    source: str  # "likelihood" (in-process) or "server log-probabilities"
    covered: float = 1.0  # share of the probability at that token that named a label


def from_scores(labels: list[str], scores: list[float]) -> LabelDistribution:
    """Softmax of in-process log-likelihoods, one per label."""
    if not scores or not all(math.isfinite(v) for v in scores):
        raise ValueError("label likelihoods must be finite numbers, one per label")
    top = max(scores)
    weights = [math.exp(s - top) for s in scores]
    total = sum(weights)
    return LabelDistribution({lb: w / total for lb, w in zip(labels, weights, strict=True)},
                             "likelihood")


def from_server_logprobs(tokens: list[TokenChoice] | None,
                         labels: list[str]) -> LabelDistribution | None:
    """The distribution at the token that begins the JSON answer's label value (None: no
    log-probabilities, no label value, or no alternative that begins a label)."""
    if not tokens:
        return None
    text = "".join(t.token for t in tokens)
    found = _LABEL_VALUE.search(text)
    if found is None:
        return None
    value_start, offset = found.end(), 0
    for choice in tokens:
        end = offset + len(choice.token)
        if end > value_start:
            already = text[offset:value_start]  # e.g. ' "' when the token starts before it
            return _match(choice, already, labels)
        offset = end
    return None


def _match(choice: TokenChoice, already: str, labels: list[str]) -> LabelDistribution | None:
    alternatives = choice.top or ((choice.token, choice.logprob),)
    mass = dict.fromkeys(labels, 0.0)
    total = 0.0
    for token, logprob in alternatives:
        p = math.exp(logprob)
        total += p
        if not token.startswith(already):
            continue
        fragment = token[len(already):].lower()
        if not fragment.strip():
            continue
        # The token may end inside a label (it could begin every label it is a prefix of) or
        # run past one (then only up to the closing quote: "billing_dispute" is not "billing").
        fits = [lb for lb in labels if lb.lower().startswith(fragment)
                or fragment.startswith(lb.lower() + '"')]
        for label in fits:
            mass[label] += p / len(fits)
    matched = sum(mass.values())
    if matched <= 0:
        return None
    return LabelDistribution({lb: m / matched for lb, m in mass.items()},
                             "server log-probabilities", matched / total if total else 0.0)
