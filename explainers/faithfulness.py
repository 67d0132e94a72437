"""How far an explanation can be trusted, per case, and what would change the answer.

Comprehensiveness and sufficiency follow ferret's definitions (DeYoung et al., 2020): the
rationale at level q is the top q of the features (q = 10 %, 20 %, ... 100 %) among those that
push the explained class up; comprehensiveness is the mean drop in the class probability when
the rationale is removed, sufficiency the mean drop when only the rationale is kept.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from explainers.model_function import CachedModelFunction
from explainers.types import Faithfulness, Flip

if TYPE_CHECKING:
    from explainers.attribution import MaskedText
    from explainers.types import Attribution


LEVELS = tuple(q / 10 for q in range(1, 11))
FLIP_MAX_CALLS = 20


def positive_order(attribution: Attribution) -> list[int]:
    """Indices of features that raise the explained class, strongest first."""
    values = attribution.values_for(attribution.explained_class)
    return [int(i) for i in np.argsort(-values, kind="stable") if values[i] > 0]


def rationales(attribution: Attribution) -> list[list[int]]:
    """The rationale at each level: the top ceil(q * n) features, of those with positive value."""
    order, n = positive_order(attribution), len(attribution.features)
    if not order:
        return []
    return [order[: min(len(order), math.ceil(q * n))] for q in LEVELS]


def _change(drop: float) -> str:
    return f"lowers it by {drop:.2f}" if drop >= 0 else f"raises it by {-drop:.2f}"


def reading(comprehensiveness: float, sufficiency: float, cls: str) -> str:
    """One sentence for the reliability badge, in words a reviewer can check."""
    strength = ("Strong" if comprehensiveness >= 0.3 else
                "Moderate" if comprehensiveness >= 0.1 else "Weak")
    alone = ("carry the decision" if sufficiency <= 0.1 else
             "carry part of it" if sufficiency <= 0.3 else "do not carry it")
    return (f"{strength} evidence: removing the highlighted words "
            f"{_change(comprehensiveness).replace('it', f'P({cls})', 1)} on average; "
            f"on their own they {alone} (keeping only them {_change(sufficiency)}).")


def faithfulness(model_fn: CachedModelFunction, masked: MaskedText,
                 attribution: Attribution) -> Faithfulness:
    cls = attribution.explained_class
    column = model_fn.classifier.labels.index(cls)
    full = attribution.probabilities[cls]
    sets = rationales(attribution)
    before = model_fn.model_calls
    if not sets:
        return Faithfulness(0.0, full, 0, f"No word raises P({cls}); nothing to highlight.")
    n = masked.n_features
    removed, kept = [], []
    for chosen in sets:
        keep = np.ones(n, dtype=bool)
        keep[chosen] = False
        removed.append(masked.keeping(keep))
        kept.append(masked.keeping(~keep))
    probs = model_fn(removed + kept)[:, column]
    comprehensiveness = float(np.mean(full - probs[: len(sets)]))
    sufficiency = float(np.mean(full - probs[len(sets) :]))
    return Faithfulness(comprehensiveness, sufficiency, model_fn.model_calls - before,
                        reading(comprehensiveness, sufficiency, cls))


def what_would_flip(model_fn: CachedModelFunction, masked: MaskedText,
                    attribution: Attribution, max_calls: int = FLIP_MAX_CALLS) -> Flip:
    """Remove the top 1, 2, ... words for the predicted label until the label changes."""
    labels = model_fn.classifier.labels
    predicted = attribution.label
    values = attribution.values_for(predicted)
    order = [int(i) for i in np.argsort(-values, kind="stable") if values[i] > 0][:max_calls]
    before = model_fn.model_calls
    texts = []
    for k in range(1, len(order) + 1):
        keep = np.ones(masked.n_features, dtype=bool)
        keep[order[:k]] = False
        texts.append(masked.keeping(keep))
    probs = model_fn(texts) if texts else np.zeros((0, len(labels)))
    for k, p in enumerate(probs, start=1):
        if labels[int(p.argmax())] != predicted:
            chosen = sorted(order[:k])
            features = [attribution.features[i] for i in chosen]
            return Flip(tuple(f.text for f in features), tuple((f.start, f.end) for f in features),
                        labels[int(p.argmax())], len(order), model_fn.model_calls - before)
    return Flip(None, (), None, len(order), model_fn.model_calls - before)
