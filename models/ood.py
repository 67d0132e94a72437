"""How unlike the calibration cases a new case is: a k-nearest-neighbour distance on embeddings.

The score is the cosine distance from a case's encoder embedding (mean of the last hidden
states, unit length) to its k-th nearest calibration case (Sun et al., "Out-of-distribution
detection with deep nearest neighbors", 2022). The threshold is a conformal quantile of the
calibration cases' own leave-one-out scores, so an in-distribution case is flagged with
probability at most ``false_alarm``.

The distances are computed with numpy (a case against a few hundred calibration cases is one
small matrix product), so deciding a case does not import scikit-learn (~0.7 s a process).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_K = 5
CHUNK = 1024  # query rows per distance matrix


class NeighbourDistance:
    def __init__(self, reference: np.ndarray, k: int = DEFAULT_K,
                 false_alarm: float = 0.01) -> None:
        reference = np.asarray(reference, dtype=np.float32)
        if len(reference) < 2:
            raise ValueError("The distance score needs at least two calibration cases.")
        self.k = min(k, len(reference) - 1)
        self.false_alarm = false_alarm
        self._reference = reference.astype(np.float64)
        self._reference_sq = np.einsum("ij,ij->i", self._reference, self._reference)
        # Each calibration case against the others: its nearest neighbour is itself.
        self.calibration_scores = self._kth_cosine(reference, self.k)
        self.threshold = _conformal_quantile(self.calibration_scores, false_alarm)

    def score(self, embeddings: np.ndarray) -> np.ndarray:
        return self._kth_cosine(np.atleast_2d(embeddings), self.k - 1)

    def is_unusual(self, embeddings: np.ndarray) -> np.ndarray:
        return self.score(embeddings) > self.threshold

    def _kth_cosine(self, queries: np.ndarray, kth: int) -> np.ndarray:
        """Each query's cosine distance to its ``kth`` nearest reference (0: the nearest).

        For unit vectors, |a - b|^2 = 2 - 2 cos(a, b), so the distance is |a - b|^2 / 2. The
        arithmetic is scikit-learn's brute-force search on float32 embeddings, which this
        replaced: |a|^2 + |b|^2 - 2 a.b in float64, floored at 0, rounded to float32, then its
        square root (float32) squared in float64.
        """
        queries = np.asarray(queries, dtype=np.float32).astype(np.float64)
        out = np.empty(len(queries))
        for start in range(0, len(queries), CHUNK):
            q = queries[start : start + CHUNK]
            squared = (np.einsum("ij,ij->i", q, q)[:, None] - 2 * q @ self._reference.T
                       + self._reference_sq[None, :])
            nearest = np.partition(np.maximum(squared, 0.0), kth, axis=1)[:, kth]
            euclidean = np.sqrt(nearest.astype(np.float32)).astype(np.float64)
            out[start : start + CHUNK] = euclidean**2 / 2
        return out


def _conformal_quantile(scores: np.ndarray, false_alarm: float) -> float:
    n = len(scores)
    rank = math.ceil((n + 1) * (1 - false_alarm))
    return float("inf") if rank > n else float(np.sort(scores)[rank - 1])
