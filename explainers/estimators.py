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
from dataclasses import dataclass, field

import numpy as np

from explainers.model_function import CachedModelFunction
from explainers.types import SETTLED_SHARE
from explainers.words import word_spans

_SPACES = re.compile(r"\s+")
# Texts of at most this many words get exact values (2^n model calls of short texts).
EXACT_MAX_WORDS = 12
# Replicates of the bootstrap over sampled pairs (standard errors and settledness).
BOOTSTRAP = 64
TOP_K = 5


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


def constrained_solve(gram: np.ndarray, rhs: np.ndarray, total: np.ndarray) -> np.ndarray:
    """argmin_d d'Gd - 2 d'r subject to sum(d) = total, for each column of ``rhs`` (classes;
    further axes are replicates): d = G^-1 r - G^-1 1 (1'G^-1 r - total) / (1'G^-1 1)."""
    n = gram.shape[0]
    flat = rhs.reshape(n, -1)
    solved = np.linalg.solve(gram, np.column_stack([flat, np.ones(n)]))
    g_inv_r, g_inv_1 = solved[:, :-1], solved[:, -1]
    totals = np.broadcast_to(total, rhs.shape[1:]).reshape(-1)
    nu = (g_inv_1 @ flat - totals) / g_inv_1.sum()
    return (g_inv_r - np.outer(g_inv_1, nu)).reshape(rhs.shape)


@dataclass
class KernelSamples:
    """The subset pairs drawn so far, as running sums of the least-squares problem (so a round
    costs its own samples, not all of them again) and each pair's share of the right-hand side
    (for the bootstrap). Sums are of the residual game for one fixed ``prior``."""

    masks: np.ndarray  # [2 * pairs, n]
    gram: np.ndarray  # sum over subsets of z z'
    pair_rhs: np.ndarray  # [pairs, n, classes]: each pair's sum of z * residual


def kernel(game: WordGame, pairs: int, rng: np.random.Generator,
           prior: np.ndarray | None = None, ridge: float | None = None,
           samples: KernelSamples | None = None, bootstrap: int = BOOTSTRAP,
           ) -> tuple[Estimate, KernelSamples]:
    """KernelSHAP with paired samples and the efficiency constraint, shrunk towards ``prior``.

    ``prior`` [words, classes]: values that already satisfy efficiency (zeros when absent).
    The fit is of the residual game v(S) - v(empty) - sum_{i in S} prior_i, whose values sum to
    zero, so ``prior`` + the fit is efficient for the game itself. ``ridge`` (in samples'
    worth) pulls the fit towards zero, i.e. the answer towards the prior; the default is one
    sample per word with a prior, a small numerical guard without one. Pass the returned
    ``samples`` (and the same prior) to add pairs in rounds."""
    n = game.n
    base, whole = game.values(np.array([np.zeros(n, bool), np.ones(n, bool)]))
    prior = np.zeros((n, len(base))) if prior is None else np.asarray(prior, dtype=np.float64)
    ridge = (float(n) if np.any(prior) else 1e-6) if ridge is None else ridge
    if samples is None:
        samples = KernelSamples(np.zeros((0, n), bool), np.zeros((n, n)),
                                np.zeros((0, n, len(base))))
    if pairs:
        masks = sample_pairs(n, pairs, rng)
        z = masks.astype(np.float64)
        residual = game.values(masks) - base - z @ prior
        pair_rhs = (z[:, :, None] * residual[:, None, :]).reshape(pairs, 2, n, -1).sum(1)
        samples = KernelSamples(np.concatenate([samples.masks, masks]),
                                samples.gram + z.T @ z,
                                np.concatenate([samples.pair_rhs, pair_rhs]))
    rows = len(samples.masks)
    target = whole - base - prior.sum(0)
    done = len(samples.pair_rhs)
    if not done:
        values = prior + target / n
        errors, replicates = np.full_like(values, np.nan), None
    else:
        gram = samples.gram / rows + (ridge / rows) * np.eye(n)
        values = prior + constrained_solve(gram, samples.pair_rhs.sum(0) / rows, target)
        errors, replicates = _bootstrap_pairs(gram, samples.pair_rhs, rows, target, prior,
                                              bootstrap, rng)
    name = "kernel-paired" if not np.any(prior) else "kernel-paired (with a prior)"
    estimate = Estimate(values, base, errors, name, done, {"replicates": replicates})
    return estimate, samples


def _bootstrap_pairs(gram: np.ndarray, pair_rhs: np.ndarray, rows: int, target: np.ndarray,
                     prior: np.ndarray, replicates: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Standard errors by resampling the sampled pairs (a pair stays whole), the Gram matrix
    held at its full-sample value (a linearised bootstrap: one solve for every replicate), and
    the replicates themselves. A child generator, so the estimate never depends on it."""
    pairs = len(pair_rhs)
    if pairs < 2 or replicates < 2:
        return np.full(pair_rhs.shape[1:], np.nan), None
    child = rng.spawn(1)[0]
    weights = child.multinomial(pairs, np.full(pairs, 1 / pairs), size=replicates)
    rhs = np.einsum("bk,knc->nbc", weights, pair_rhs) / rows  # [n, replicates, classes]
    fits = constrained_solve(gram, rhs, target[None, :])
    reps = prior[None, :, :] + fits.transpose(1, 0, 2)
    return reps.std(0, ddof=1), reps


def rank_agreement(values: np.ndarray, other: np.ndarray, k: int = TOP_K) -> tuple[float, float]:
    """Spearman of two answers' values for one class, and the share of the top ``k`` words (by
    |value|) they have in common."""
    return spearman(values, other), top_overlap(values, other, k)


def spearman(values: np.ndarray, other: np.ndarray) -> float:
    """Rank correlation of two answers' values (1 for fewer than three words; 0 when one is
    constant)."""
    from scipy.stats import spearmanr

    if len(values) < 3:
        return 1.0
    return float(np.nan_to_num(spearmanr(values, other).statistic))


def top_overlap(values: np.ndarray, other: np.ndarray, k: int = TOP_K,
                signed: bool = False) -> float:
    """Shared share of the top ``k`` words: by |value| (what the window shows first) or, when
    ``signed``, by value (the words pushing the class up, as the faithfulness scores read
    them)."""
    key = (lambda v: -v) if signed else (lambda v: -np.abs(v))
    k = min(k, len(values))
    if k == 0:
        return 1.0
    return len(set(np.argsort(key(values))[:k]) & set(np.argsort(key(other))[:k])) / k


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
