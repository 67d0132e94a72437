"""Shapley values of words, estimated from the model's answers on texts with words deleted.

One game (``WordGame``: a set of kept words -> the model's calibrated probabilities) and the
estimators the app measures on it, numpy only (no shap, no Qt):

- ``exact``: every subset, for short texts.
- ``permutation_pairs``: a random order of the words and its reverse (antithetic sampling);
  each pair is an unbiased estimate, so their spread gives the standard error.
- ``kernel``: KernelSHAP — a least-squares fit over subsets drawn with the Shapley kernel, each
  drawn with its complement (paired sampling), solved under the efficiency constraint. With a
  ``prior`` (values from a cheap pass, e.g. the partition explainer) the fit is shrunk towards
  the prior instead of towards zero, so a budget smaller than the number of words still gives
  an answer that improves on the prior where the samples say so.

Every estimator is efficient by construction (base + sum of a class's values = the class's
probability for the whole text) and vector-valued over classes (all classes share the model
calls). Each returns standard errors per word and class: from the pairs for permutations, from a
bootstrap over the sampled pairs for the regression, zero for exact values. ``Settledness`` says
whether the order of the top words would survive that uncertainty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from explainers.model_function import CachedModelFunction
from explainers.words import word_spans

_SPACES = re.compile(r"\s+")
# Texts of at most this many words get exact values (2^n model calls of short texts).
EXACT_MAX_WORDS = 12
# Replicates of the bootstrap over sampled pairs (standard errors and settledness).
BOOTSTRAP = 64
TOP_K = 5
# A shown top word is settled when it is among the top words in this share of the replicates.
SETTLED_SHARE = 0.9


class WordGame:
    """The classifier on the case text with only some words kept.

    A kept set becomes text exactly as shap's Text masker writes it with deletion (each word
    with the spaces after it; a deleted word leaves a space; runs of spaces collapse; the ends
    are stripped), so that the model function's cache is shared with shap's explainers and
    with the faithfulness and flip checks."""

    def __init__(self, model_fn: CachedModelFunction, text: str) -> None:
        spans = word_spans(text)
        ends = [nxt.start for nxt in spans[1:]] + [spans[-1].end] if spans else []
        self.segments = [text[s.start : max(s.end, end)]
                         for s, end in zip(spans, ends, strict=True)]
        self.n = len(spans)
        self.model_fn = model_fn
        self.words_evaluated = 0

    def text(self, keep: np.ndarray) -> str:
        joined = "".join(s if k else " " for s, k in zip(self.segments, keep, strict=True))
        return _SPACES.sub(" ", joined).strip()

    def values(self, masks: np.ndarray) -> np.ndarray:
        """Probabilities [m, classes] of the texts keeping each row's words."""
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        texts = [self.text(m) for m in masks]
        fresh = {t: int(m.sum()) for t, m in zip(texts, masks, strict=True)
                 if t not in self.model_fn.cache}
        self.words_evaluated += sum(fresh.values())
        return np.asarray(self.model_fn(texts), dtype=np.float64)

    @property
    def calls(self) -> int:
        return self.model_fn.model_calls


@dataclass(frozen=True)
class Estimate:
    """Values [words, classes] with base [classes] and standard errors [words, classes]."""

    values: np.ndarray
    base: np.ndarray
    errors: np.ndarray
    estimator: str
    samples: int  # permutation pairs, sampled subset pairs, or 2^n for exact
    info: dict = field(default_factory=dict)


def _shapley_weights(n: int) -> np.ndarray:
    """w[s] = s! (n - s - 1)! / n!, the weight of a subset of size s in Shapley's formula."""
    from math import comb

    return np.array([1.0 / (n * comb(n - 1, s)) for s in range(n)])


def exact(game: WordGame) -> Estimate:
    """Every subset of the words: 2^n model calls (less for repeated words)."""
    n = game.n
    codes = np.arange(2 ** n)
    masks = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
    v = game.values(masks)
    sizes = masks.sum(1)
    weights = _shapley_weights(n)
    values = np.zeros((n, v.shape[1]))
    for i in range(n):
        without = codes[(codes >> i) & 1 == 0]
        values[i] = (weights[sizes[without]][:, None]
                     * (v[without | (1 << i)] - v[without])).sum(0)
    return Estimate(values, v[0], np.zeros_like(values), "exact", 2 ** n)


def _prefix_masks(order: np.ndarray) -> np.ndarray:
    """Masks keeping the first k words of ``order``, k = 0..n."""
    n = len(order)
    ranks = np.empty(n, dtype=int)
    ranks[order] = np.arange(n)
    return ranks[None, :] < np.arange(n + 1)[:, None]


def _pass_contributions(order: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Marginal contribution of each word along one order, from the values of its prefixes."""
    contributions = np.empty((len(order), v.shape[1]))
    contributions[order] = np.diff(v, axis=0)
    return contributions


def permutation_pairs(game: WordGame, pairs: int, rng: np.random.Generator,
                      done: np.ndarray | None = None) -> tuple[Estimate, np.ndarray]:
    """Antithetic permutation sampling: ``pairs`` more orders, each also walked in reverse.

    Returns the estimate and the per-pair contributions [pairs, words, classes] (with ``done``,
    the pairs of an earlier call, prepended), so a caller can add pairs in rounds."""
    n = game.n
    orders = [rng.permutation(n) for _ in range(pairs)]
    masks = np.concatenate([np.concatenate([_prefix_masks(o), _prefix_masks(o[::-1])])
                            for o in orders]) if orders else np.zeros((0, n), dtype=bool)
    v = game.values(masks).reshape(pairs, 2, n + 1, -1) if orders else None
    new = np.stack([(_pass_contributions(o, v[p, 0]) + _pass_contributions(o[::-1], v[p, 1])) / 2
                    for p, o in enumerate(orders)]) if orders else np.zeros((0, n, 0))
    per_pair = new if done is None or not len(done) else np.concatenate([done, new])
    base = game.values(np.zeros((1, n), dtype=bool))[0]
    errors = (per_pair.std(0, ddof=1) / np.sqrt(len(per_pair)) if len(per_pair) > 1
              else np.full(per_pair.shape[1:], np.nan))
    return Estimate(per_pair.mean(0), base, errors, "permutation-pairs", len(per_pair)), per_pair


# Kernel sampling -------------------------------------------------------------------------------

def kernel_size_probabilities(n: int) -> np.ndarray:
    """P(size = s) for s = 1..n-1 under the Shapley kernel: proportional to 1 / (s (n - s))."""
    s = np.arange(1, n)
    p = 1.0 / (s * (n - s))
    return p / p.sum()


def sample_pairs(n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` subsets drawn with the Shapley kernel, each followed by its complement:
    masks [2 * count, n]."""
    sizes = rng.choice(np.arange(1, n), size=count, p=kernel_size_probabilities(n))
    ranks = rng.random((count, n)).argsort(1).argsort(1)
    first = ranks < sizes[:, None]
    return np.stack([first, ~first], axis=1).reshape(2 * count, n)


def constrained_fit(z: np.ndarray, y: np.ndarray, total: np.ndarray, ridge: float) -> np.ndarray:
    """argmin_d mean_k (y_k - z_k . d)^2 + ridge/m |d|^2 subject to sum(d) = total, for each
    column of y (classes). z [m, n] in {0, 1}, y [m, C], total [C]."""
    m, n = z.shape
    a = z.T @ z / m + (ridge / max(m, 1)) * np.eye(n)
    b = z.T @ y / m
    a_inv_b = np.linalg.solve(a, b)
    a_inv_1 = np.linalg.solve(a, np.ones(n))
    nu = (a_inv_1 @ b - total) / a_inv_1.sum()
    return a_inv_b - np.outer(a_inv_1, nu)


@dataclass
class KernelSamples:
    """The subset pairs drawn so far and the game's values on them (grows in rounds)."""

    masks: np.ndarray
    values: np.ndarray


def kernel(game: WordGame, pairs: int, rng: np.random.Generator,
           prior: np.ndarray | None = None, ridge: float | None = None,
           samples: KernelSamples | None = None, bootstrap: int = BOOTSTRAP,
           ) -> tuple[Estimate, KernelSamples]:
    """KernelSHAP with paired samples and the efficiency constraint, shrunk towards ``prior``.

    ``prior`` [words, classes]: values that already satisfy efficiency (zeros when absent).
    The fit is of the residual game v(S) - v(empty) - sum_{i in S} prior_i, whose values sum to
    zero, so ``prior`` + the fit is efficient for the game itself. ``ridge`` (in samples'
    worth) pulls the fit towards zero, i.e. the answer towards the prior; the default is one
    sample per word with a prior, a small numerical guard without one."""
    n = game.n
    empty_full = game.values(np.array([np.zeros(n, bool), np.ones(n, bool)]))
    base, whole = empty_full
    prior = np.zeros((n, len(base))) if prior is None else np.asarray(prior, dtype=np.float64)
    ridge = (float(n) if np.any(prior) else 1e-6) if ridge is None else ridge
    new_masks = sample_pairs(n, pairs, rng) if pairs else np.zeros((0, n), dtype=bool)
    new_values = game.values(new_masks) if pairs else np.zeros((0, len(base)))
    if samples is not None:
        new_masks = np.concatenate([samples.masks, new_masks])
        new_values = np.concatenate([samples.values, new_values])
    samples = KernelSamples(new_masks, new_values)
    z = samples.masks.astype(np.float64)
    residual = samples.values - base - z @ prior
    target = whole - base - prior.sum(0)

    def fit(rows: np.ndarray) -> np.ndarray:
        return prior + constrained_fit(z[rows], residual[rows], target, ridge)

    rows = np.arange(len(z))
    values = fit(rows) if len(z) else prior + target / n
    errors, replicates = _bootstrap_pairs(fit, len(z) // 2, bootstrap, rng)
    name = "kernel-paired" if not np.any(prior) else "kernel-paired (prior: partition)"
    estimate = Estimate(values, base, errors if errors is not None else np.full_like(values,
                                                                                    np.nan),
                        name, len(z) // 2, {"replicates": replicates})
    return estimate, samples


def _bootstrap_pairs(fit: Callable[[np.ndarray], np.ndarray], pairs: int, replicates: int,
                     rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Standard errors by resampling the sampled pairs (a pair stays whole), and the
    replicates themselves. A child generator, so the estimate itself never depends on it."""
    if pairs < 2 or replicates < 2:
        return None, None
    child = rng.spawn(1)[0]
    draws = child.integers(0, pairs, size=(replicates, pairs))
    reps = np.stack([fit(np.stack([2 * d, 2 * d + 1], 1).ravel()) for d in draws])
    return reps.std(0, ddof=1), reps


# Settledness -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settledness:
    """Would the shown top words stay the top words under the estimator's uncertainty?"""

    settled: bool
    top: tuple[int, ...]  # the shown top words (by |value| of the explained class)
    inclusion: tuple[float, ...]  # share of replicates with each among their top words
    runner_up: int | None  # the word outside the shown top most often inside it
    runner_up_inclusion: float
    replicates: int


def settledness(values: np.ndarray, replicates: np.ndarray, k: int = TOP_K,
                share: float = SETTLED_SHARE) -> Settledness:
    """From replicates [r, words] of one class's values (bootstrap replicates, or draws from
    a normal with the standard errors): how often is each shown top word in the top ``k``."""
    n = len(values)
    k = min(k, n)
    top = [int(i) for i in np.argsort(-np.abs(values), kind="stable")[:k]]
    if replicates is None or len(replicates) < 2 or k == n:
        return Settledness(True, tuple(top), tuple(1.0 for _ in top), None, 0.0, 0)
    ranks = np.argsort(-np.abs(replicates), axis=1, kind="stable")[:, :k]
    counts = np.zeros(n)
    np.add.at(counts, ranks.ravel(), 1)
    shares = counts / len(replicates)
    outside = [i for i in np.argsort(-shares, kind="stable") if i not in top]
    runner = int(outside[0]) if outside else None
    inclusion = tuple(float(shares[i]) for i in top)
    return Settledness(min(inclusion) >= share, tuple(top), inclusion, runner,
                       float(shares[runner]) if runner is not None else 0.0, len(replicates))


def normal_replicates(values: np.ndarray, errors: np.ndarray, count: int,
                      rng: np.random.Generator) -> np.ndarray:
    """Draws around ``values`` with independent normal errors (for permutation pairs)."""
    errors = np.nan_to_num(errors)
    return values[None, :] + rng.standard_normal((count, len(values))) * errors[None, :]
