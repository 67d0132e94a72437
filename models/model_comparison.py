"""Champion and challenger: is a new model at least as good as the active one on the same cases?

Both models answer the same held-out cases (reviewed cases neither was trained on). The
difference in accuracy and in macro-F1 (challenger − champion) gets a 95 % paired bootstrap
interval: the cases are resampled together, so each resample compares the two models on the
same cases (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13). McNemar's
exact test (the binomial test on the cases exactly one model gets right; McNemar 1947) says
whether either is right significantly more often.

The rule (``PROMOTION_RULE``): the challenger is promoted when it is *not worse*: the lower end
of the interval of its macro-F1 difference is above −``MARGIN`` and McNemar's test does not
find it wrong significantly more often than the champion. Anything else keeps the champion,
unless a person forces the promotion and says why (an audit event).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MARGIN = 0.02  # how much worse on macro-F1 a challenger may be and still count as "not worse"
LEVEL = 0.95
RESAMPLES = 2000
MCNEMAR_ALPHA = 0.05
PROMOTION_RULE = (
    f"promote when the {LEVEL:.0%} paired-bootstrap interval of the macro-F1 difference "
    f"(challenger − champion) lies above −{MARGIN:g} and McNemar's exact test does not find "
    f"the challenger wrong significantly more often (one-sided p < {MCNEMAR_ALPHA:g})")


@dataclass(frozen=True)
class Comparison:
    """Champion against challenger on the same cases, and the verdict of the rule."""

    n: int
    champion_accuracy: float
    challenger_accuracy: float
    accuracy_difference: tuple[float, float, float]  # estimate, low, high
    champion_macro_f1: float
    challenger_macro_f1: float
    macro_f1_difference: tuple[float, float, float]
    only_champion_right: int
    only_challenger_right: int
    mcnemar_p_worse: float  # one-sided: the challenger is wrong more often
    mcnemar_p_two_sided: float
    promote: bool
    rule: str = PROMOTION_RULE

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        f1, acc = self.macro_f1_difference, self.accuracy_difference
        verdict = "not worse: promote" if self.promote else "worse or not shown to be as good"
        return (f"On {self.n} held-out reviewed cases: macro-F1 {self.champion_macro_f1:.3f} → "
                f"{self.challenger_macro_f1:.3f} (difference {f1[0]:+.3f}, {LEVEL:.0%} interval "
                f"[{f1[1]:+.3f}, {f1[2]:+.3f}]); accuracy {self.champion_accuracy:.3f} → "
                f"{self.challenger_accuracy:.3f} ({acc[0]:+.3f} [{acc[1]:+.3f}, {acc[2]:+.3f}]); "
                f"only the champion right on {self.only_champion_right}, only the challenger "
                f"on {self.only_challenger_right} (McNemar p = {self.mcnemar_p_two_sided:.3g}). "
                f"The challenger is {verdict}.")


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 over the labels present in either (as scikit-learn's ``f1_score(...,
    average="macro")`` with ``zero_division=0``, which the tests hold it to)."""
    return float(resampled_macro_f1(truth, predicted, np.arange(len(truth))[None, :])[0])


def resampled_macro_f1(truth: np.ndarray, predicted: np.ndarray,
                       draws: np.ndarray) -> np.ndarray:
    """Macro-F1 of each resample (a row of case indices in ``draws``), counted per label for
    all resamples at once (thousands of resamples in well under a second)."""
    f1_sum = np.zeros(len(draws))
    present = np.zeros(len(draws))
    for label in np.union1d(truth, predicted):
        hit, said, is_ = (predicted == label) & (truth == label), predicted == label, \
            truth == label
        tp = hit[draws].sum(1)
        fp = (said & ~is_)[draws].sum(1)
        fn = (is_ & ~said)[draws].sum(1)
        seen = (tp + fp + fn) > 0
        f1_sum += np.where(seen, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        present += seen
    return f1_sum / np.maximum(present, 1)


def compare(truth, champion, challenger, seed: int = 13) -> Comparison:
    """Compare two models' answers (label indices) on the same cases."""
    from scipy.stats import binomtest

    truth, champion, challenger = (np.asarray(a, dtype=int) for a in
                                   (truth, champion, challenger))
    n = len(truth)
    if n == 0 or len(champion) != n or len(challenger) != n:
        raise ValueError("both models must answer the same, non-empty set of cases")
    right_a, right_b = champion == truth, challenger == truth
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(RESAMPLES, n))
    acc_diff = (right_b[draws].mean(1) - right_a[draws].mean(1))
    f1_diff = (resampled_macro_f1(truth, challenger, draws)
               - resampled_macro_f1(truth, champion, draws))
    only_a, only_b = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    discordant = only_a + only_b
    p_worse = binomtest(only_a, discordant, 0.5, alternative="greater").pvalue \
        if discordant else 1.0
    p_two = binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    f1_a, f1_b = macro_f1(truth, champion), macro_f1(truth, challenger)
    f1_interval = _interval(f1_b - f1_a, f1_diff)
    promote = f1_interval[1] > -MARGIN and p_worse >= MCNEMAR_ALPHA
    return Comparison(n, float(right_a.mean()), float(right_b.mean()),
                      _interval(float(right_b.mean() - right_a.mean()), acc_diff),
                      f1_a, f1_b, f1_interval, only_a, only_b, float(p_worse), float(p_two),
                      bool(promote))


def _interval(estimate: float, resampled: np.ndarray) -> tuple[float, float, float]:
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(estimate), float(low), float(high)
