"""The benchmark's reference Shapley values of words, kept per permutation pair.

Exact values where the text has at most ``EXACT_MAX_WORDS`` words; otherwise antithetic
permutation pairs over words (no partition tree), each pair kept on disk, so the reference's own
noise is known (random half-against-half splits, the Spearman–Brown reliability of the whole)
and more pairs can be added later without recomputing the first ones (pair j is drawn from the
seed sequence [REFERENCE_SEED, j]).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from explainers import estimators
from explainers.estimators import spearman, top_overlap
from explainers.model_function import CachedModelFunction

REFERENCE_DIR = Path(__file__).resolve().parent / "out" / "attribution" / "reference"
EXACT_MAX_WORDS = 10
REFERENCE_SEED = 20261205


@dataclass(frozen=True)
class Reference:
    """Values [words, classes] and, when sampled, the pairs [pairs, words, classes]."""

    values: np.ndarray
    per_pair: np.ndarray | None
    method: str

    @property
    def pairs(self) -> int:
        return 0 if self.per_pair is None else len(self.per_pair)


def _path(classifier, text: str) -> Path:
    key = hashlib.sha256(f"pairs-v1|{classifier.model_id}|{text}".encode()).hexdigest()
    return REFERENCE_DIR / f"{key}.npz"


def reference(classifier, text: str, pairs: int) -> Reference:
    """At least ``pairs`` pairs (or exact values), computing only what the cache lacks."""
    path = _path(classifier, text)
    stored = np.load(path) if path.is_file() else None
    if stored is not None and str(stored["method"]) == "exact":
        return Reference(stored["values"], None, "exact")
    game = estimators.WordGame(CachedModelFunction(classifier), text)
    if game.n <= EXACT_MAX_WORDS:
        values = estimators.exact(game).values
        _save(path, method="exact", values=values)
        return Reference(values, None, "exact")
    done = stored["per_pair"] if stored is not None else np.zeros((0, game.n, 0))
    for j in range(len(done), pairs):
        _, one = estimators.permutation_pairs(game, 1, np.random.default_rng([REFERENCE_SEED,
                                                                               j]))
        done = one if not len(done) else np.concatenate([done, one])
        _save(path, method="pairs", per_pair=done.astype(np.float32))
    done = done[:max(pairs, 1)] if len(done) >= pairs else done
    return Reference(done.mean(0), done, "pairs")


def _save(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".partial.npz")
    np.savez(scratch, **arrays)
    scratch.replace(path)


def split_half(ref: Reference, column: int, splits: int = 20,
               seed: int = 0) -> tuple[float, float, float]:
    """Mean over random half splits of the pairs: Spearman, signed top-5, |value| top-5 of one
    half against the other (exact values: 1, 1, 1)."""
    if ref.per_pair is None or ref.pairs < 2:
        return 1.0, 1.0, 1.0
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(splits):
        order = rng.permutation(ref.pairs)
        a = ref.per_pair[order[: ref.pairs // 2], :, column].mean(0)
        b = ref.per_pair[order[ref.pairs // 2 :], :, column].mean(0)
        scores.append((spearman(a, b), top_overlap(a, b, signed=True), top_overlap(a, b)))
    return tuple(float(x) for x in np.mean(scores, axis=0))


def spearman_brown(half: float) -> float:
    """The reliability of the whole reference from the agreement of its halves."""
    return 2 * half / (1 + half) if half > -1 else 0.0
