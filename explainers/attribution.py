"""SHAP word attributions for one case, with a progressive coarse-then-refined answer.

Built on shap: a ``shap.maskers.Text`` masker fed with word features (``explainers.words``), and
shap's Partition (default) or Permutation explainer over the classifier's calibrated
probabilities. Shapley efficiency holds: base value + sum of a class's values = that class's
probability for the text as the model saw it.

The default is the Partition explainer with an *empty* fixed context (shap's
``fixed_context=0``), run until every node of the word tree is resolved (2 evaluations per
word). Each split is measured against the words of the group alone, so the masked inputs are
short and cheap, and every word gets its own value instead of a share of an unresolved group.
On the benchmark (benchmarks/bench_attribution.py) it agrees better with tree-free Shapley
values and scores better comprehensiveness and sufficiency than shap's default, at a fraction
of the time. ``context="both"`` is shap's own default (both contexts, averaged), which at these
budgets stops several levels above the words.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import shap

from explainers import estimators, jit_free, sampled, word_tree
from explainers.faithfulness import faithfulness, what_would_flip
from explainers.model_function import CachedModelFunction
from explainers.types import Attribution, Feature, FirstAnswer
from explainers.words import WordTokenizer, word_spans
from models.classifier import Classifier
from models.errors import DataError
from models.progress import CancelFlag, ProgressCallback

if TYPE_CHECKING:
    from explainers.amortized_store import AmortizedExplainer

from explainers.methods import DEFAULT_METHOD, METHODS, SAMPLED, TREE_METHODS

# The Partition explainer's fixed context: the sibling group absent, present, or both averaged.
CONTEXTS = {"empty": 0, "full": 1, "both": None}
PRECISIONS = ("int8", "float32")
# Exact values on request up to this many words (2^20 model calls is about an hour here).
EXACT_LIMIT_WORDS = 20
MASKINGS = ("delete", "mask")
# shap's numba-compiled helpers cost ~5 s of compilation per process and save nothing on texts
# (explainers/jit_free.py); CASEWISE_SHAP_JIT=1 runs shap's own compiled ones instead.
SHAP_JIT = os.environ.get("CASEWISE_SHAP_JIT") == "1"
jit_free.install()
word_tree.install()  # shap's quadratic word tree took 45 s for a 6,000-word text


def default_budget(n_features: int, method: str = "partition", context: str = "empty") -> int:
    """Evaluations that grow with the text.

    Partition with one fixed context: 2 per word, enough to resolve the whole tree (2 per
    split, plus the empty and the full text). Both contexts: the tree grows four ways per
    split and cannot be resolved in time, so 1.6 per word, 48 to 180. Permutation: two
    forward-and-back passes."""
    if method == "permutation":
        return 2 * (2 * n_features + 1)
    if method == "exact":
        return 2 ** n_features
    if method in ("kernel", "refined", "amortized-refined", "auto"):
        return sampled.default_cap(n_features)
    if method == "amortized":
        return 1
    if context == "both":
        return int(min(max(1.6 * n_features, 48), 180))
    return 2 * n_features + 2


def progressive_budgets(budget: int, first: int | None, method: str, n_features: int) -> list[int]:
    """The budgets of the coarse pass and the final one. The Permutation explainer needs at
    least one full forward-and-back pass (2n + 1 evaluations), so its budgets start there."""
    floor = 2 * n_features + 1 if method == "permutation" else 1
    first = first or max(24, budget // 5)
    return sorted({max(floor, min(first, budget)), max(floor, budget)})


class MaskedText:
    """The case text with chosen words kept, exactly as the explainer's masker writes it."""

    def __init__(self, masker: WordMasker, text: str) -> None:
        self.masker = masker
        self.text = text
        self.n_features = len(word_spans(text))

    def keeping(self, keep: np.ndarray) -> str:
        return str(self.masker(np.asarray(keep, dtype=bool), self.text)[0][0])


class WordMasker(shap.maskers.Text):
    """shap's Text masker over words, masking by deletion or by the model's mask token.

    With ``tree=False`` the masker offers no partition tree: shap's Permutation and Exact
    explainers then estimate plain Shapley values over words, not Owen values constrained by
    the tree (both explainers follow a masker's ``clustering`` when it has one).
    """

    def __init__(self, mask_token: str, masking: str, tree: bool = True) -> None:
        super().__init__(WordTokenizer(), mask_token=mask_token, collapse_mask_token=False)
        if masking == "delete":
            # Deleting masked words gives shorter inputs (faster) and matches the removal used
            # by the faithfulness scores. shap's constructor needs a non-empty token.
            self.mask_token = ""
        if not tree:
            self.clustering = None

    def clustering(self, s):
        # shap's partition tree divides by its largest height, which fails for a single word.
        if len(word_spans(s)) < 2:
            return np.zeros((0, 4))
        return super().clustering(s)


def make_masker(classifier: Classifier, masking: str, tree: bool = True) -> WordMasker:
    return WordMasker(classifier.tokenizer.mask_token, masking, tree)


def _run_shap(model_fn: CachedModelFunction, masker, text: str, labels: list[str], method: str,
              context: str, budget: int, seed: int):
    """shap's explainer over the words, without numba unless ``SHAP_JIT``."""
    explainer = shap.Explainer(model_fn, masker, output_names=labels, algorithm=method,
                               seed=seed)
    options = {"fixed_context": CONTEXTS[context]} if method == "partition" else {}
    with contextlib.nullcontext() if SHAP_JIT else jit_free.jit_free():
        return explainer([text], max_evals=budget, batch_size=model_fn.batch_size,
                         silent=True, **options)[0]


def _assemble_values(values: np.ndarray, base: np.ndarray, errors: np.ndarray | None, text: str,
                     spans, labels: list[str], target: str, probs: np.ndarray,
                     **fields) -> Attribution:
    order = [target] + [c for c in sorted(labels, key=lambda c: -probs[labels.index(c)])
                        if c != target]
    features = tuple(
        Feature(text[s.start : s.end], s.start, s.end,
                {c: float(values[i, labels.index(c)]) for c in order},
                None if errors is None else
                {c: float(errors[i, labels.index(c)]) for c in order})
        for i, s in enumerate(spans)
    )
    return Attribution(
        label=labels[int(probs.argmax())], explained_class=target, classes=tuple(order),
        probabilities={c: float(probs[labels.index(c)]) for c in order},
        base_values={c: float(base[labels.index(c)]) for c in order}, features=features,
        **fields,
    )


def explain(
    classifier: Classifier,
    text: str,
    target: str | None = None,
    budget: int | None = None,
    method: str = DEFAULT_METHOD,
    context: str = "empty",
    masking: str = "delete",
    first_budget: int | None = None,
    on_update: Callable[[Attribution], None] | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    seed: int = 0,
    with_checks: bool = True,
    precision: str = "float32",
    known_probabilities: dict[str, float] | None = None,
    stop_when_settled: bool = True,
    amortized: AmortizedExplainer | None = None,
    refine: bool = True,
) -> Attribution:
    """Attributions for ``text``; a first answer goes to ``on_update`` before the final one.

    ``known_probabilities``: the classifier's calibrated probabilities for the whole text, when
    the caller has them (the pipeline's prediction); they are reused instead of classifying
    the text again (not for int8, whose probabilities differ, nor for a text cut to fit).

    ``method="auto"``: exact values for texts of at most ``estimators.EXACT_MAX_WORDS`` words;
    otherwise the ``amortized`` explainer's answer when it is given and switched on, else the
    partition pass; then, with ``refine``, KernelSHAP rounds from that answer until the top
    words settle (``stop_when_settled``) or ``budget`` model calls are spent."""
    if not isinstance(text, str) or not text.strip():
        raise DataError("The case text is empty: there is nothing to explain.")
    if (method not in METHODS or context not in CONTEXTS or masking not in MASKINGS
            or precision not in PRECISIONS):
        raise ValueError(f"method must be one of {METHODS}, context one of {tuple(CONTEXTS)}, "
                         f"masking one of {MASKINGS}, precision one of {PRECISIONS}")
    if method in SAMPLED and masking != "delete":
        raise ValueError(f"The {method} method deletes masked words; masking 'mask' is only "
                         "available with the partition and permutation methods.")
    start = time.monotonic()
    seen = classifier.seen_prefix(text)
    visible = text[:seen]
    spans = word_spans(visible)
    if not spans:
        raise DataError("The case has no words to attribute (only spaces or control characters).")
    method = resolve_method(method, len(spans), amortized, refine)
    if method == "amortized" and amortized is None:
        raise DataError("This model has no amortized explainer: fit one (`python main.py models "
                        "--fit-explainer FILE`) or choose another method.")
    if method == "exact" and len(spans) > EXACT_LIMIT_WORDS:
        raise DataError(f"Exact values need 2^{len(spans)} model calls for {len(spans)} words; "
                        f"use them for texts of at most {EXACT_LIMIT_WORDS} words, or choose "
                        "the refined method.")
    budget = 2 ** len(spans) if method == "exact" else \
        budget or default_budget(len(spans), method, context)
    if budget < 1:
        raise DataError(f"The budget must be a positive number of model calls, not {budget}.")
    labels = classifier.labels
    explained = classifier.quantized() if precision == "int8" else classifier
    model_fn = CachedModelFunction(explained, progress=progress, cancel=cancel,
                                   expected_calls=budget)
    if known_probabilities is not None and precision == "float32" and seen == len(text):
        model_fn.prime(visible, [known_probabilities[label] for label in labels])
    probs = model_fn([visible])[0]
    target = target or labels[int(probs.argmax())]
    if target not in labels:
        raise DataError(f"Unknown class {target!r}; the model's classes are {labels}.")
    case = _Case(model_fn, make_masker(classifier, masking, tree=method in TREE_METHODS), text,
                 visible, spans, labels, target, probs, start, seed, context,
                 {"masking": masking, "precision": precision, "seen_chars": seen,
                  "text_chars": len(text)})
    if method in SAMPLED:
        result = _explain_sampled(case, classifier, method, budget, stop_when_settled,
                                  on_update, amortized, first_budget)
    else:
        result = _explain_shap(case, method, budget, first_budget, on_update)
    if with_checks:
        masked = MaskedText(case.masker, visible)
        result = replace(result, faithfulness=faithfulness(model_fn, masked, result),
                         flip=what_would_flip(model_fn, masked, result))
        result = replace(result, model_calls=model_fn.model_calls,
                         seconds=time.monotonic() - start)
    if on_update is not None:
        on_update(result)
    return result


def resolve_method(method: str, n_words: int, amortized: AmortizedExplainer | None,
                   refine: bool) -> str:
    """What ``auto`` (and ``refined`` on a short text) runs for a text of ``n_words`` words."""
    if method in ("auto", "refined") and n_words <= estimators.EXACT_MAX_WORDS:
        return "exact"
    if method == "auto":
        refine = refine and n_words <= sampled.REFINE_MAX_WORDS
        if amortized is not None and amortized.enabled:
            return "amortized-refined" if refine else "amortized"
        return "refined" if refine else "partition"
    if method in ("partition", "refined") and n_words == 1:
        return "permutation"  # a partition needs two leaves; for one word this is exact
    return method


@dataclass(frozen=True)
class _Case:
    """One explanation's fixed inputs: the model function, the text and its words."""

    model_fn: CachedModelFunction
    masker: WordMasker
    text: str
    visible: str
    spans: list
    labels: list[str]
    target: str
    probs: np.ndarray
    start: float
    seed: int
    context: str
    common: dict

    def assemble(self, values: np.ndarray, base: np.ndarray, errors: np.ndarray | None,
                 **fields) -> Attribution:
        return _assemble_values(values, base, errors, self.text, self.spans, self.labels,
                                self.target, self.probs, model_calls=self.model_fn.model_calls,
                                seconds=time.monotonic() - self.start, **self.common, **fields)


def _explain_shap(case: _Case, method: str, budget: int, first_budget: int | None,
                  on_update) -> Attribution:
    """shap's Partition or Permutation explainer, a coarse pass first."""
    stages = progressive_budgets(budget, first_budget, method, len(case.spans))
    result = None
    for stage_budget in stages:
        explanation = _run_shap(case.model_fn, case.masker, case.visible, case.labels, method,
                                case.context, stage_budget, case.seed)
        final = stage_budget == stages[-1]
        values = np.asarray(explanation.values).reshape(len(case.spans), len(case.labels))
        base = np.asarray(explanation.base_values).reshape(len(case.labels))
        result = case.assemble(values, base, None, method=method,
                               context=case.context if method == "partition" else "none",
                               budget=stage_budget, final=final,
                               estimator=_shap_estimator(method, case.context))
        if on_update is not None and not final:
            on_update(result)
    return result


def _shap_estimator(method: str, context: str) -> str:
    if method == "partition":
        return f"shap Partition explainer, {context} context"
    return "shap Permutation explainer"


def _explain_sampled(case: _Case, classifier: Classifier, method: str, budget: int,
                     stop_when_settled: bool, on_update, amortized: AmortizedExplainer | None,
                     first_budget: int | None) -> Attribution:
    """Exact values, the amortized answer, or KernelSHAP rounds from a first answer."""
    game = estimators.WordGame(case.model_fn, case.visible)
    words = [case.visible[s.start : s.end] for s in case.spans]
    column = case.labels.index(case.target)

    def attribution(answer: sampled.SampledValues, first: Attribution | None = None
                    ) -> Attribution:
        return case.assemble(answer.values, answer.base, answer.errors, method=method,
                             context=case.context if method in TREE_METHODS else "none",
                             budget=budget, final=answer.final,
                             estimator=answer.estimator, uncertainty=answer.uncertainty,
                             words_evaluated=game.words_evaluated,
                             first_answer=None if first is None else
                             _agreement(first, answer.values[:, column], case.labels, column))

    first = None
    if method in ("amortized", "amortized-refined") or (method == "exact" and amortized
                                                        and amortized.enabled and game.n > 8):
        learned = _amortized_answer(case, classifier, amortized, words, column)
        first = attribution(learned)
        if method == "amortized":
            return first
        if on_update is not None:
            on_update(replace(first, final=False))
    if method == "exact":
        return attribution(sampled.exact_values(game, words, column), first)
    prior, prior_name = None, ""
    if method == "refined":
        first = replace(_explain_shap(case, "partition", default_budget(len(case.spans)),
                                      first_budget or default_budget(len(case.spans)), None),
                        final=False)
        if on_update is not None:
            on_update(first)
        prior, prior_name = _matrix(first, case.labels), "partition pass"
    elif first is not None:
        prior, prior_name = _matrix(first, case.labels), "amortized answer"

    def round_done(answer: sampled.SampledValues) -> None:
        if on_update is not None:
            on_update(attribution(answer, first))

    answer = sampled.refine(game, words, column, prior, prior_name, budget, case.seed,
                            stop_when_settled, round_done)
    return attribution(answer, first)


def _amortized_answer(case: _Case, classifier: Classifier, amortized: AmortizedExplainer,
                      words: list[str], column: int) -> sampled.SampledValues:
    values, spread = amortized.values(classifier, case.visible, case.probs)
    return sampled.learned_values(values, amortized.base, spread, words, column,
                                  amortized.explainer_id, case.seed)


def _agreement(first: Attribution, final: np.ndarray, labels: list[str], column: int
               ) -> FirstAnswer:
    rho, top = estimators.rank_agreement(first.values_for(labels[column]), final)
    return FirstAnswer(first.estimator, rho, top, first.seconds)


def _matrix(attribution: Attribution, labels: list[str]) -> np.ndarray:
    """Values [words, classes] in the model's label order."""
    return np.array([[f.values[c] for c in labels] for f in attribution.features])
