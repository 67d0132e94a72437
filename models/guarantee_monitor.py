"""Is the certified bound still true? An anytime-valid watch over the audited AUTO cases.

The escalation policy promises that at most α of the cases it decides automatically (AUTO) are
wrong. Reviewers see only escalated cases, so that promise is checked on a random audit sample
of AUTO cases, reviewed blind: each audited case is right (0) or wrong (1). The monitor keeps a
confidence sequence for the AUTO error rate — a lower bound valid at every sample size at once,
so it may be looked at after every case without inflating the false alarms — and raises the
alarm when that lower bound passes α: the guarantee is then broken with confidence 1 − δ.

The sequence is the betting construction of Waudby-Smith and Ramdas ("Estimating means of
bounded random variables by betting", JRSS-B 86(1), 2024, arXiv:2010.09686), one-sided. For
each candidate error rate m, a gambler starts with capital 1 and bets a fraction λ of it that
the next audited case is wrong more often than m: the capital is K_t(m) = Π (1 + λ (x_i − m)).
If the true rate is at most m, K(m) is a non-negative supermartingale, so by Ville's
inequality it ever reaches 1/δ with probability at most δ. Every m whose capital has reached
1/δ is rejected; the lower bound is the largest rejected m.

The bets are their "diversified Kelly" (section 5 of the paper): the capital split evenly
among a few constant bets λ = f / m (f = 5 % to 50 %, so a right case costs at most half of a
share), K(m) the mean of the shares — a mean of supermartingales, so just as valid. Constant
bets matter when the rate changes: the predictable plug-in bet used before shrinks like
1 / sqrt(t log t), so after months of good decisions a sudden drift moved it too slowly. In the
simulation (benchmarks/bench_learning_loop.py) 10 of 77 banking77 classes relabelled after
week 3 took the audited AUTO error from about 5 % to about 30 %, and the plug-in bet raised
the alarm in 1 of 5 streams within 300 audited cases after the drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.types import ESCALATE, EscalationDecision

GRID_STEPS = 1000  # candidate error rates m = 0.001 ... 0.999
# The shares' bets, as fractions f of 1/m: a right case costs a share the fraction f of it.
BET_FRACTIONS = (0.05, 0.1, 0.2, 0.35, 0.5)


@dataclass(frozen=True)
class GuaranteeWatch:
    """What the audited AUTO cases say about the certified bound, after ``n`` of them."""

    n: int  # audited AUTO cases
    errors: int  # of them wrong
    alpha: float  # the bound the policy certified
    delta: float  # the monitor's error: a false alarm at most this often, ever
    lower_bound: float  # anytime-valid lower confidence bound of the AUTO error rate
    alarm_at: int | None  # the audited case at which the bound first passed α (None: never)

    @property
    def alarm(self) -> bool:
        return self.alarm_at is not None

    @property
    def observed_rate(self) -> float | None:
        return self.errors / self.n if self.n else None

    def summary(self) -> str:
        if self.n == 0:
            return ("No audited automatic decision yet: nothing can be said about the bound "
                    "until audit samples are reviewed.")
        seen = (f"{self.errors} of {self.n} audited automatic decisions were wrong "
                f"({self.errors / self.n:.1%}); the error rate is at least "
                f"{self.lower_bound:.1%} with {1 - self.delta:.0%} confidence, at any time.")
        if self.alarm:
            return (f"The guarantee is broken: {seen} That is above the certified "
                    f"{self.alpha:.0%} (since audited case {self.alarm_at}). Every case is "
                    "escalated until a new policy is fitted.")
        return f"The guarantee holds so far: {seen} The certified bound is {self.alpha:.0%}."


def watch(wrong: Sequence[bool], alpha: float, delta: float) -> GuaranteeWatch:
    """The monitor after the audited AUTO cases ``wrong`` (True: the model was wrong), in the
    order they were reviewed."""
    if not (0 < alpha < 1 and 0 < delta < 1):
        raise ValueError("alpha and delta must be between 0 and 1")
    x = np.asarray(wrong, dtype=float)
    lower = _largest_rejected(x, delta)
    at_alpha = first_rejection(x, np.array([alpha]), delta)[0]
    return GuaranteeWatch(len(x), int(x.sum()), alpha, delta, lower,
                          int(at_alpha) if at_alpha <= len(x) else None)


def _largest_rejected(x: np.ndarray, delta: float) -> float:
    """The largest grid rate m rejected by now, by bisection: the capital falls as m rises,
    so the rejected rates are those below some point (a few passes over the cases, not one
    per grid rate: 20,000 audited cases cost milliseconds, not half a gigabyte)."""
    low, high = 0, GRID_STEPS - 1  # grid indices 1 .. GRID_STEPS - 1; 0 = none rejected
    while low < high:
        middle = (low + high + 1) // 2
        if first_rejection(x, np.array([middle / GRID_STEPS]), delta)[0] <= len(x):
            low = middle
        else:
            high = middle - 1
    return low / GRID_STEPS


def lower_bounds(wrong: Sequence[bool], delta: float) -> np.ndarray:
    """The lower confidence bound after each audited case (for the plot of the sequence)."""
    x = np.asarray(wrong, dtype=float)
    grid = np.arange(1, GRID_STEPS) / GRID_STEPS
    reached = first_rejection(x, grid, delta)
    return np.array([grid[reached <= t].max() if (reached <= t).any() else 0.0
                     for t in range(1, len(x) + 1)])


def first_rejection(x: np.ndarray, grid: np.ndarray, delta: float) -> np.ndarray:
    """For each candidate rate m in ``grid``: the 1-based case at which the capital betting
    against "the rate is at most m" first reached 1/δ (len(x) + 1: never)."""
    if len(x) == 0:
        return np.ones(len(grid), dtype=int)
    threshold = math.log(1 / delta)
    log_capital = None  # log of the mean of the shares' capital, per grid rate and case
    for fraction in BET_FRACTIONS:
        lam = fraction / grid[:, None]
        share = np.cumsum(np.log1p(lam * (x[None, :] - grid[:, None])), axis=1)
        log_capital = share if log_capital is None else np.logaddexp(log_capital, share)
    hit = log_capital - math.log(len(BET_FRACTIONS)) >= threshold
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, len(x) + 1)


def suspended(decision: EscalationDecision, watch_: GuaranteeWatch) -> EscalationDecision:
    """``decision`` escalated because the monitor found the certified bound broken: while the
    alarm stands, no case is decided automatically (until a new policy is fitted)."""
    from dataclasses import replace

    reason = (f"the guarantee of this policy is broken: {watch_.errors} of {watch_.n} audited "
              f"automatic decisions were wrong, at least {watch_.lower_bound:.0%} with "
              f"{1 - watch_.delta:.0%} confidence, above the certified {watch_.alpha:.0%}; "
              "every case is escalated until a new policy is fitted")
    return replace(decision, decision=ESCALATE, reasons=(*decision.reasons, reason),
                   reason_codes=(*decision.reason_codes, "guarantee_broken"))
