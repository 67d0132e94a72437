"""Sampled Shapley values of words, refined in rounds until the top words settle.

The estimators themselves are in ``explainers.estimators``; this module runs them for one case:
exact values for short texts; otherwise KernelSHAP rounds (paired subsets, efficiency
constrained), started from a prior answer (the partition pass, or the amortized head's), each
round followed by a bootstrap that says whether the shown top words would stay on top. It stops
when they are settled, at the call cap, or on cancel. Caps and rounds are counted in model
calls, never in seconds, so a seed gives the same answer on a busy machine as on an idle one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from explainers import estimators
from explainers.types import Uncertainty

# Subset pairs of the first round (64 masked texts, one batch of the model function); each
# later round doubles the pairs drawn so far, so the check after each round costs little
# beside the model calls it follows.
ROUND_PAIRS = 32
# Texts longer than this are not refined by ``auto`` (their first answer is the final one):
# the refinement's least squares grow with the square of the words and its calls with the text.
REFINE_MAX_WORDS = 400


@dataclass(frozen=True)
class SampledValues:
    """Values, base and standard errors [words, classes]; how they were settled."""

    values: np.ndarray
    base: np.ndarray
    errors: np.ndarray
    estimator: str
    uncertainty: Uncertainty
    final: bool = True


def default_cap(n_words: int) -> int:
    """Model calls the refinement may spend at most: four per word, at least two rounds."""
    return max(4 * n_words, 4 * ROUND_PAIRS)


def learned_values(values: np.ndarray, base: np.ndarray, spread: np.ndarray, words: list[str],
                   column: int, explainer_id: str, seed: int,
                   replicates: int = estimators.BOOTSTRAP) -> SampledValues:
    """The amortized explainer's answer; its settledness from draws with the heads' spread."""
    draws = estimators.normal_replicates(values[:, column], spread[:, column], replicates,
                                         np.random.default_rng(seed))
    top = estimators.settledness(values[:, column], draws)
    uncertainty = _uncertainty(top, words, 1, "learned", kind="heads")
    return SampledValues(values, base, spread, f"amortized explainer {explainer_id}".strip(),
                         uncertainty)


def exact_values(game: estimators.WordGame, words: list[str], column: int) -> SampledValues:
    estimate = estimators.exact(game)
    top = estimators.settledness(estimate.values[:, column], None)
    uncertainty = Uncertainty(True, tuple(words[i] for i in top.top), top.inclusion, None, 0.0,
                              0, "exact", 1, "exact")
    return SampledValues(estimate.values, estimate.base, estimate.errors, "exact", uncertainty)


def refine(game: estimators.WordGame, words: list[str], column: int,
           prior: np.ndarray | None, prior_name: str, cap: int, seed: int,
           stop_when_settled: bool = True,
           on_round: Callable[[SampledValues], None] | None = None) -> SampledValues:
    """KernelSHAP rounds from ``prior`` (efficient values [words, classes]; None: from zero)
    until the top words of class ``column`` settle or ``cap`` model calls are spent."""
    rng = np.random.default_rng(seed)
    start_calls = game.calls
    max_pairs = max(1, cap // 2)
    samples, rounds, answer = None, 0, None
    name = (f"KernelSHAP, paired, from the {prior_name}" if prior is not None
            else "KernelSHAP, paired")
    while True:
        drawn = 0 if samples is None else len(samples.masks) // 2
        pairs = min(max(ROUND_PAIRS, drawn), max_pairs - drawn)
        estimate, samples = estimators.kernel(game, pairs, rng, prior=prior, samples=samples)
        rounds += 1
        replicates = estimate.info["replicates"]
        settled = estimators.settledness(
            estimate.values[:, column], None if replicates is None else replicates[:, :, column])
        spent = game.calls - start_calls
        done_pairs = len(samples.masks) // 2
        stopped = ("settled" if stop_when_settled and settled.settled and rounds >= 2 else
                   "budget" if spent >= cap or done_pairs >= max_pairs else "")
        uncertainty = _uncertainty(settled, words, rounds, stopped or "budget")
        errors = estimate.errors if replicates is not None else np.zeros_like(estimate.values)
        answer = SampledValues(estimate.values, estimate.base, errors, name, uncertainty,
                               final=bool(stopped))
        if stopped:
            return answer
        if on_round is not None:
            on_round(answer)


def _uncertainty(settled: estimators.Settledness, words: list[str], rounds: int,
                 stopped: str, kind: str = "bootstrap") -> Uncertainty:
    runner = None if settled.runner_up is None else words[settled.runner_up]
    return Uncertainty(settled.settled, tuple(words[i] for i in settled.top), settled.inclusion,
                       runner, settled.runner_up_inclusion, settled.replicates, kind,
                       rounds, stopped)
