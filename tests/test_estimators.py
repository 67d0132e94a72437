"""The in-house Shapley estimators on games whose true values are known.

A synthetic game here is the mathematics under test, not a stand-in for the classifier: a
softmax over word weights with pairwise interactions, vector-valued like the classifier's
probabilities. The estimators on the real model are tested in test_attribution.py.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from explainers import estimators
from explainers.attribution import MaskedText, WordMasker


class SyntheticGame:
    """v(S) = softmax(bias + sum_{i in S} w_i + sum_{i<j in S} u_ij) over three classes."""

    def __init__(self, n: int, seed: int = 0, interaction: float = 0.5,
                 dominant: float = 0.0) -> None:
        rng = np.random.default_rng(seed)
        self.n = n
        self.w = rng.normal(0, 1, (n, 3))
        self.w[0] += dominant * np.array([3.0, -1.5, -1.5])
        self.u = rng.normal(0, interaction, (n, n, 3)) * np.triu(np.ones((n, n)), 1)[..., None]
        self.bias = rng.normal(0, 0.3, 3)
        self.seen: set[bytes] = set()
        self.words_evaluated = 0

    def values(self, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        for m in masks:
            self.seen.add(np.packbits(m).tobytes())
        z = masks.astype(float)
        logits = self.bias + z @ self.w + np.einsum("mi,mj,ijc->mc", z, z, self.u)
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    @property
    def calls(self) -> int:
        return len(self.seen)


def brute_force(game: SyntheticGame) -> np.ndarray:
    """Shapley values by averaging marginal contributions over every order."""
    n = game.n
    total = np.zeros((n, 3))
    for order in itertools.permutations(range(n)):
        mask = np.zeros(n, bool)
        before = game.values(mask)[0]
        for i in order:
            mask[i] = True
            after = game.values(mask)[0]
            total[i] += after - before
            before = after
    return total / math.factorial(n)


def efficiency_gap(game: SyntheticGame, estimate: estimators.Estimate) -> float:
    whole = game.values(np.ones(game.n, bool))[0]
    return float(np.abs(estimate.base + estimate.values.sum(0) - whole).max())


def test_exact_equals_brute_force_and_is_efficient():
    game = SyntheticGame(6)
    estimate = estimators.exact(game)
    assert np.allclose(estimate.values, brute_force(game), atol=1e-12)
    assert efficiency_gap(game, estimate) < 1e-12
    assert not estimate.errors.any()


@pytest.mark.parametrize("method", ["pairs", "kernel", "kernel-prior"])
def test_sampled_estimators_are_efficient_and_deterministic(method):
    def run(seed):
        game = SyntheticGame(15, seed=3)
        rng = np.random.default_rng(seed)
        if method == "pairs":
            return game, estimators.permutation_pairs(game, 3, rng)[0]
        prior = None
        if method == "kernel-prior":
            whole = game.values(np.ones(15, bool))[0] - game.values(np.zeros(15, bool))[0]
            prior = np.tile(whole / 15, (15, 1))
        return game, estimators.kernel(game, 20, rng, prior=prior)[0]

    game, first = run(7)
    assert efficiency_gap(game, first) < 1e-9
    _, again = run(7)
    _, other = run(8)
    assert np.array_equal(first.values, again.values)
    assert np.array_equal(first.errors, again.errors)
    assert not np.allclose(first.values, other.values)


def test_more_samples_get_closer_to_the_truth():
    truth = estimators.exact(SyntheticGame(10, seed=1)).values

    def error(method, size, seed):
        game = SyntheticGame(10, seed=1)
        rng = np.random.default_rng(seed)
        if method == "pairs":
            estimate = estimators.permutation_pairs(game, size, rng)[0]
        else:
            estimate = estimators.kernel(game, size, rng, bootstrap=0)[0]
        return np.abs(estimate.values - truth).mean()

    for method, small, large in (("pairs", 1, 16), ("kernel", 10, 160)):
        few = np.mean([error(method, small, s) for s in range(10)])
        many = np.mean([error(method, large, s) for s in range(10)])
        assert many < few / 2, (method, few, many)


def test_permutation_pairs_standard_errors_cover_the_truth():
    truth = estimators.exact(SyntheticGame(9, seed=2)).values
    covered = []
    for seed in range(60):
        estimate = estimators.permutation_pairs(SyntheticGame(9, seed=2), 6,
                                                np.random.default_rng(seed))[0]
        covered.append(np.abs(estimate.values - truth) <= 1.96 * estimate.errors)
    # Six pairs give a t-like spread, so the normal interval covers a little less than 95 %.
    assert 0.8 <= np.mean(covered) <= 0.99


def test_rounds_add_to_the_samples_already_drawn():
    game = SyntheticGame(12, seed=4)
    rng = np.random.default_rng(0)
    _first, samples = estimators.kernel(game, 10, rng)
    calls = game.calls
    second, samples = estimators.kernel(game, 10, rng, samples=samples)
    assert len(samples.masks) == 40 and second.samples == 20
    assert game.calls > calls
    _estimate, per_pair = estimators.permutation_pairs(game, 2, rng)
    more, per_pair = estimators.permutation_pairs(game, 3, rng, done=per_pair)
    assert more.samples == 5 and per_pair.shape == (5, 12, 3)


def test_a_dominant_word_settles_and_ties_do_not():
    values = np.array([1.0, 0.5, 0.4, 0.3, 0.2, 0.01, 0.0])
    tight = values + np.random.default_rng(0).normal(0, 0.005, (64, 7))
    settled = estimators.settledness(values, tight)
    assert settled.settled and settled.top == (0, 1, 2, 3, 4)
    tied = np.array([1.0, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2])
    loose = tied + np.random.default_rng(0).normal(0, 0.05, (64, 7))
    unsettled = estimators.settledness(tied, loose)
    assert not unsettled.settled and unsettled.runner_up in (5, 6)
    assert 0 < unsettled.runner_up_inclusion < 1


def test_settledness_without_replicates_is_trivially_settled():
    result = estimators.settledness(np.array([0.3, -0.2, 0.1]), None)
    assert result.settled and result.top == (0, 1, 2) and result.replicates == 0


class _Cache(dict):
    pass


class _TextOnly:
    """Only the cache the game checks; the texts are compared, no model is called."""

    cache = _Cache()
    model_calls = 0


@pytest.mark.parametrize("text", [
    "The refill was late , and the pharmacy   never called back!",
    "  leading spaces, émojis 😀😀 and CJK 東京都の病院  ",
    "one",
    "tabs\tand\nnew lines — dashes… quotes “like this”",
])
def test_game_texts_are_the_masker_texts(text):
    game = estimators.WordGame(_TextOnly(), text)
    masked = MaskedText(WordMasker("[MASK]", "delete", tree=False), text)
    rng = np.random.default_rng(0)
    for _ in range(200):
        keep = rng.random(game.n) < rng.random()
        assert game.text(keep) == masked.keeping(keep)
