"""The statistics behind escalation: a certified confidence threshold, conformal prediction sets,
and the selective-prediction numbers that show how they behave.

The threshold follows Learn-Then-Test (Angelopoulos, Bates, Candès, Jordan and Lei, 2021) with
MAPIE's pieces: for each threshold on a grid fixed in advance, the binary Hoeffding–Bentkus
p-value of "the error rate among accepted cases exceeds alpha", then fixed-sequence testing
from the strictest threshold to the loosest at level delta. The loosest threshold that passes
is kept: among cases at or above it the error rate is at most alpha, with probability at least
1 - delta over the draw of the calibration cases.

MAPIE, scikit-learn and scipy are imported only to fit (or for APS sets): a fitted LAC set is one
quantile, applied with MAPIE's own rule in numpy, so deciding a case does not import them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import numpy as np

# Thresholds on the calibrated top-class probability, strict to loose, fixed before any data.
THRESHOLD_GRID = tuple(round(1 - j / 100, 2) for j in range(1, 101))
SET_SCORES = ("lac", "aps")
# MAPIE's tolerance when comparing a label's score with the quantile (mapie._machine_precision).
MAPIE_EPSILON = 1e-8


def min_certifiable(alpha: float, delta: float) -> int:
    """The fewest accepted cases that could pass at all: with none wrong, the binomial p-value
    is (1 - alpha)^n, which must reach delta."""
    return math.ceil(math.log(delta) / math.log(1 - alpha))


@dataclass(frozen=True)
class ThresholdTest:
    """The outcome of the test, with every number needed to check it by hand."""

    threshold: float | None
    alpha: float
    delta: float
    n_calibration: int
    grid: tuple[float, ...]
    accepted: tuple[int, ...]
    errors: tuple[int, ...]
    p_values: tuple[float, ...]
    start: int | None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ThresholdTest:
        return cls(**{**data, **{k: tuple(data[k]) for k in
                                 ("grid", "accepted", "errors", "p_values")}})


def certify_threshold(confidence: np.ndarray, correct: np.ndarray, alpha: float,
                      delta: float, eligible: np.ndarray | None = None) -> ThresholdTest:
    """The loosest grid threshold whose accepted-case error rate is certified <= alpha.

    A case is accepted when its confidence reaches the threshold and it is ``eligible``
    (passes the policy's other checks, fixed before the test).

    The sequence starts at the strictest threshold that accepts at least ``min_certifiable``
    cases and a tenth of the calibration cases: a start with a handful of cases fails on a
    single error and ends the fixed sequence at once (simulated: a start at 10 % gave the
    most coverage for 200 to 1,500 cases at the same error control). The start depends only
    on the confidences, never on whether the cases were right, so the test stays valid.
    """
    from mapie.risk_control import control_fwer
    from mapie.risk_control.methods import compute_hoeffding_bentkus_p_value

    confidence, correct = np.asarray(confidence, float), np.asarray(correct, bool)
    eligible = np.ones(len(confidence), bool) if eligible is None else np.asarray(eligible, bool)
    grid = np.array(THRESHOLD_GRID)
    accepted_mask = (confidence[None, :] >= grid[:, None]) & eligible[None, :]
    accepted = accepted_mask.sum(1)
    errors = (accepted_mask & ~correct[None, :]).sum(1)
    risk = np.divide(errors, accepted, out=np.zeros(len(grid)), where=accepted > 0)
    p_values = compute_hoeffding_bentkus_p_value(risk, accepted.astype(float), alpha,
                                                 binary=True)[:, 0]
    p_values = np.where(accepted >= min_certifiable(alpha, delta), p_values, 1.0)
    enough = max(min_certifiable(alpha, delta), math.ceil(0.1 * len(confidence)))
    testable = np.flatnonzero(accepted >= enough)
    threshold, start = None, None
    if len(testable):
        start = int(testable[0])
        passed = control_fwer(p_values[start:], delta, "fixed_sequence")
        if len(passed):
            threshold = float(grid[start + int(np.max(passed))])
    return ThresholdTest(threshold, alpha, delta, len(confidence), tuple(grid.tolist()),
                         tuple(int(a) for a in accepted), tuple(int(e) for e in errors),
                         tuple(float(p) for p in p_values), start)


@functools.cache
def _given_probabilities():
    """The estimator class for MAPIE, made on first use (it needs scikit-learn)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class GivenProbabilities(ClassifierMixin, BaseEstimator):
        """A fitted "classifier" whose inputs are already its calibrated probabilities, so
        MAPIE conformalises the real model's output without refitting anything."""

        def __init__(self, n_classes: int = 2) -> None:
            self.n_classes = n_classes

        def fit(self, X=None, y=None):
            self.classes_ = np.arange(self.n_classes)
            return self

        def predict_proba(self, X):
            return np.asarray(X, dtype=float)

        def predict(self, X):
            return np.asarray(X).argmax(1)

    return GivenProbabilities


class ConformalSets:
    """Split-conformal prediction sets at level 1 - alpha (MAPIE), LAC or APS scores.

    A LAC set holds the labels whose score 1 - p is within the conformal quantile of the
    calibration scores: after MAPIE has fitted it, that quantile is all there is to keep
    (``state``), and sets are predicted with MAPIE's rule in numpy. APS sets stay with MAPIE.
    """

    def __init__(self, probabilities: np.ndarray, labels: np.ndarray, alpha: float,
                 score: str) -> None:
        if score not in SET_SCORES:
            raise ValueError(f"set score must be one of {SET_SCORES}")
        self.score = score
        self.n_classes = probabilities.shape[1]
        self.quantile: float | None = None
        # With fewer than 1/alpha cases no label can be ruled out at level 1 - alpha: every set
        # is the whole label set (MAPIE refuses to conformalise on so few).
        self.trivial = len(labels) <= max(1 / alpha, 1 / (1 - alpha))
        if self.trivial:
            return
        from mapie.classification import SplitConformalClassifier

        estimator = _given_probabilities()(self.n_classes).fit()
        self._mapie = SplitConformalClassifier(estimator, confidence_level=1 - alpha,
                                               conformity_score=score, prefit=True)
        self._mapie.conformalize(probabilities, labels)
        if score == "lac":
            # MAPIE works the quantile out when it predicts; one prediction makes it.
            self._mapie.predict_set(np.atleast_2d(probabilities[0]))
            quantiles = self._mapie._mapie_classifier.conformity_score_function_.quantiles_
            self.quantile = float(np.asarray(quantiles).reshape(-1)[0])

    def state(self) -> dict | None:
        """What predicts the sets without MAPIE (None for APS, which MAPIE refits)."""
        if self.trivial or self.quantile is not None:
            return {"score": self.score, "n_classes": self.n_classes, "trivial": self.trivial,
                    "quantile": self.quantile}
        return None

    @classmethod
    def from_state(cls, state: dict) -> ConformalSets:
        sets = cls.__new__(cls)
        sets.score, sets.n_classes = state["score"], int(state["n_classes"])
        sets.trivial, sets.quantile = bool(state["trivial"]), state["quantile"]
        if not sets.trivial and (sets.score != "lac" or sets.quantile is None):
            raise ValueError("only LAC sets (or trivial ones) are kept as a quantile")
        return sets

    def predict(self, probabilities: np.ndarray) -> np.ndarray:
        """A boolean (cases x classes) matrix: which labels are in each case's set."""
        if self.trivial:
            return np.ones((len(np.atleast_2d(probabilities)), self.n_classes), dtype=bool)
        if self.quantile is not None:
            probs = np.atleast_2d(probabilities)
            # MAPIE's own checks and rule (LACConformityScore.get_prediction_sets).
            np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5,
                                       err_msg="The sum of the scores is not equal to one.")
            return np.less_equal((1 - probs.astype(np.float64)) - self.quantile, MAPIE_EPSILON)
        params = {"include_last_label": True} if self.score == "aps" else None
        _, sets = self._mapie.predict_set(np.atleast_2d(probabilities),
                                          conformity_score_params=params)
        return sets[:, :, 0].astype(bool)


def proportion_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper–Pearson interval for k of n (0, 1 when there are no cases)."""
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(level, method="exact")
    return float(ci.low), float(ci.high)


def risk_coverage_curve(confidence: np.ndarray, correct: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and error among accepted cases when accepting the k most confident, k=1..n."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    wrong = (~np.asarray(correct, bool)[order]).astype(float)
    k = np.arange(1, len(order) + 1)
    return k / len(order), np.cumsum(wrong) / k


def aurc(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve (lower is better): the mean selective risk."""
    _, risk = risk_coverage_curve(confidence, correct)
    return float(risk.mean()) if len(risk) else float("nan")
