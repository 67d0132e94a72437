"""Champion against challenger (models/model_comparison.py): the paired bootstrap interval,
McNemar's exact test and the promotion rule, on answers whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from models.model_comparison import MARGIN, compare


def answers(truth: np.ndarray, accuracy: float, seed: int) -> np.ndarray:
    """Answers right on about ``accuracy`` of the cases, wrong ones a different label."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(truth)) > accuracy
    return np.where(wrong, (truth + 1) % 3, truth)


TRUTH = np.random.default_rng(0).integers(0, 3, 400)


def test_a_clearly_better_challenger_is_promoted():
    result = compare(TRUTH, answers(TRUTH, 0.70, 1), answers(TRUTH, 0.85, 2))
    assert result.promote
    estimate, low, high = result.macro_f1_difference
    assert low < estimate < high and low > 0
    assert result.only_challenger_right > result.only_champion_right
    assert result.mcnemar_p_two_sided < 0.05 and "promote" in result.summary()


def test_a_clearly_worse_challenger_is_not():
    result = compare(TRUTH, answers(TRUTH, 0.85, 1), answers(TRUTH, 0.70, 2))
    assert not result.promote and result.macro_f1_difference[2] < 0
    assert result.mcnemar_p_worse < 0.05


def test_the_same_answers_are_not_worse():
    same = answers(TRUTH, 0.8, 3)
    result = compare(TRUTH, same, same)
    assert result.promote and result.macro_f1_difference == (0.0, 0.0, 0.0)
    assert result.only_champion_right == result.only_challenger_right == 0


def test_a_little_worse_within_the_margin_on_few_cases_is_not_shown_as_good():
    """Twenty cases cannot show a small loss is within the margin: the interval is wide."""
    truth = TRUTH[:20]
    result = compare(truth, truth, np.where(np.arange(20) < 2, (truth + 1) % 3, truth))
    assert result.macro_f1_difference[1] < -MARGIN and not result.promote


def test_answers_for_different_cases_are_refused():
    with pytest.raises(ValueError, match="same, non-empty"):
        compare(TRUTH, TRUTH[:10], TRUTH)


def test_macro_f1_is_scikit_learns():
    from sklearn.metrics import f1_score

    from models.model_comparison import macro_f1

    rng = np.random.default_rng(5)
    for _ in range(20):
        truth, predicted = rng.integers(0, 6, 50), rng.integers(0, 5, 50)
        assert macro_f1(truth, predicted) == pytest.approx(
            f1_score(truth, predicted, average="macro", zero_division=0))
