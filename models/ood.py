"""How unlike the calibration cases a new case is: a k-nearest-neighbour distance on embeddings.

The score is the cosine distance from a case's encoder embedding (mean of the last hidden
states, unit length) to its k-th nearest calibration case (Sun et al., "Out-of-distribution
detection with deep nearest neighbors", 2022). The threshold is a conformal quantile of the
calibration cases' own leave-one-out scores, so an in-distribution case is flagged with
probability at most ``false_alarm``.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.neighbors import NearestNeighbors

DEFAULT_K = 5


class NeighbourDistance:
    def __init__(self, reference: np.ndarray, k: int = DEFAULT_K,
                 false_alarm: float = 0.01) -> None:
        reference = np.asarray(reference, dtype=np.float32)
        if len(reference) < 2:
            raise ValueError("The distance score needs at least two calibration cases.")
        self.k = min(k, len(reference) - 1)
        self.false_alarm = false_alarm
        self._index = NearestNeighbors(n_neighbors=self.k + 1).fit(reference)
        # Each calibration case against the others: its nearest neighbour is itself.
        distances, _ = self._index.kneighbors(reference, n_neighbors=self.k + 1)
        self.calibration_scores = _cosine(distances[:, self.k])
        self.threshold = _conformal_quantile(self.calibration_scores, false_alarm)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        distances, _ = self._index.kneighbors(np.atleast_2d(embeddings), n_neighbors=self.k)
        return _cosine(distances[:, self.k - 1])

    def is_unusual(self, embeddings: np.ndarray) -> np.ndarray:
        return self.score(embeddings) > self.threshold


def _cosine(euclidean: np.ndarray) -> np.ndarray:
    # For unit vectors, |a - b|^2 = 2 - 2 cos(a, b).
    return np.asarray(euclidean, dtype=float) ** 2 / 2


def _conformal_quantile(scores: np.ndarray, false_alarm: float) -> float:
    n = len(scores)
    rank = math.ceil((n + 1) * (1 - false_alarm))
    return float("inf") if rank > n else float(np.sort(scores)[rank - 1])
