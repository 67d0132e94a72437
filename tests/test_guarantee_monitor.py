"""The guarantee monitor (models/guarantee_monitor.py): a false alarm on streams whose AUTO
error rate is at the certified bound at most δ of the time, looked at after every case;
an alarm soon after the rate rises well above it; what it says at each stage."""

from __future__ import annotations

import numpy as np
import pytest

from models.guarantee_monitor import lower_bounds, watch

ALPHA, DELTA = 0.10, 0.10


def stream(rate: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < rate


def test_no_audited_case_says_nothing_can_be_said():
    result = watch([], ALPHA, DELTA)
    assert not result.alarm and result.lower_bound == 0.0
    assert "nothing can be said" in result.summary()


def test_false_alarms_at_the_bound_stay_under_delta_however_often_it_is_looked_at():
    """The worst undrifted case: the true AUTO error rate is exactly α. Every one of 400
    streams of 1,000 audited cases is watched after every case (the alarm is the first
    time the lower bound passes α)."""
    alarms = sum(watch(stream(ALPHA, 1000, seed), ALPHA, DELTA).alarm for seed in range(400))
    assert alarms / 400 <= DELTA


def test_a_fixed_size_interval_looked_at_every_case_would_alarm_far_more_often():
    """Why a confidence sequence: a one-sided 90 % interval recomputed after every case
    crosses α on most streams at the bound (the same streams as above)."""
    from scipy.stats import beta as beta_dist

    def peeking_alarm(x):
        errors = np.cumsum(x)
        n = np.arange(1, len(x) + 1)
        lower = beta_dist.ppf(DELTA, errors, n - errors + 1)
        return bool(np.nan_to_num(lower > ALPHA).any())

    alarms = sum(peeking_alarm(stream(ALPHA, 1000, seed)) for seed in range(100))
    assert alarms / 100 > 2 * DELTA


def test_a_broken_guarantee_is_caught_within_a_few_hundred_audited_cases():
    for seed in range(20):
        result = watch(stream(0.30, 400, seed), ALPHA, DELTA)
        assert result.alarm and result.alarm_at <= 200, (seed, result)
        assert result.lower_bound > ALPHA
        assert "broken" in result.summary() and f"case {result.alarm_at}" in result.summary()


def test_the_lower_bound_only_rises_and_stays_under_the_observed_rate():
    x = stream(0.2, 500, 3)
    bounds = lower_bounds(x, DELTA)
    assert np.all(np.diff(bounds) >= 0)  # a running intersection: once rejected, always
    assert bounds[-1] <= x.mean()
    assert watch(x, ALPHA, DELTA).lower_bound == pytest.approx(bounds[-1])


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        watch([True], 0.0, 0.1)
