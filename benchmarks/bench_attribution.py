"""Word attributions vs shap's default, on the first reviews of the demo test file.

For each configuration: time per case (p50, p95), model calls per case, AOPC comprehensiveness
and sufficiency (each method scored on its own word features, same model function), and rank
agreement on words (Spearman, top-5 overlap) with a high-budget reference: shap's Permutation
explainer over words with ten times the default budget.

    .venv/bin/python benchmarks/bench_attribution.py [--reviews 50] [--reference-evals 5000]

Uses the active model in $CASEWISE_HOME (train one with `python main.py train`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import shap
from scipy.stats import spearmanr

from app.paths import data_dir
from explainers.attribution import MaskedText, explain, make_masker
from explainers.faithfulness import faithfulness
from explainers.model_function import CachedModelFunction
from explainers.words import word_spans
from models.classifier import Classifier
from models.data import load_demo
from models.registry import ModelRegistry


@dataclass
class Scores:
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    comprehensiveness: list[float] = field(default_factory=list)
    sufficiency: list[float] = field(default_factory=list)
    spearman: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)


class CountingPipeline:
    """Counts the texts shap's default sends through the transformers pipeline."""

    def __init__(self, pipe) -> None:
        self.calls = 0
        original = pipe._forward

        def counted(model_inputs, **kwargs):
            self.calls += int(model_inputs["input_ids"].shape[0])
            return original(model_inputs, **kwargs)

        pipe._forward = counted


def shap_default_words(pipe, counter, text: str, spans, label_index: int):
    """shap.Explainer(pipeline) as a user would call it; word-piece values summed to words."""
    explainer = shap.Explainer(pipe, silent=True)
    before = counter.calls
    start = time.perf_counter()
    explanation = explainer([text])[0]
    seconds = time.perf_counter() - start
    offsets = pipe.tokenizer(text, return_offsets_mapping=True, truncation=True,
                             max_length=pipe.tokenizer.model_max_length)["offset_mapping"]
    values = np.asarray(explanation.values)[:, label_index]
    words = np.zeros(len(spans))
    for (start_char, end_char), value in zip(offsets, values, strict=False):
        if end_char <= start_char:
            continue  # special tokens
        for i, span in enumerate(spans):
            if span.start <= start_char < span.end:
                words[i] += value
                break
    return words, seconds, counter.calls - before


REFERENCE_DIR = Path(__file__).resolve().parent / "out" / "reference"


@dataclass(frozen=True)
class Reference:
    """Tree-free Shapley values of words, and the two independent halves they average."""

    values: np.ndarray
    half_a: np.ndarray
    half_b: np.ndarray
    method: str


def exact_shapley(classifier, text: str, labels: list[str], label: str) -> np.ndarray:
    """Exact Shapley values over words (2^n evaluations), for texts short enough."""
    masker = make_masker(classifier, "delete", tree=False)
    explainer = shap.explainers.Exact(CachedModelFunction(classifier), masker)
    values = np.asarray(explainer([text], max_evals=2 ** 20, batch_size=64,
                                  silent=True)[0].values)
    return values[:, labels.index(label)]


def reference_words(classifier, text: str, evals: int, label: str) -> Reference:
    """The reference, cached on disk by model, text and budget: it costs a minute a review.

    Exact where 2^words <= evals; otherwise shap's Permutation explainer with no partition
    tree, run as two independent halves of evals/2 (seeds 1 and 2) whose mean is the
    reference and whose agreement with each other shows how converged the reference is."""
    key = hashlib.sha256(f"tree-free|{classifier.model_id}|{evals}|{label}|{text}"
                         .encode()).hexdigest()
    path = REFERENCE_DIR / f"{key}.json"
    if not path.is_file():
        n = len(word_spans(text))
        if 2 ** n <= evals:
            exact = exact_shapley(classifier, text, classifier.labels, label)
            record = {"method": "exact", "half_a": exact.tolist(), "half_b": exact.tolist()}
        else:
            halves = [explain(classifier, text, target=label, budget=evals // 2,
                              method="permutation", first_budget=evals // 2, seed=seed,
                              with_checks=False, precision="float32").values_for(label)
                      for seed in (1, 2)]
            record = {"method": "permutation", "half_a": halves[0].tolist(),
                      "half_b": halves[1].tolist()}
        REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".partial")
        scratch.write_text(json.dumps(record))
        scratch.replace(path)
    record = json.loads(path.read_text())
    a, b = np.array(record["half_a"]), np.array(record["half_b"])
    return Reference((a + b) / 2, a, b, record["method"])


def faith_of(classifier, text: str, values: np.ndarray, template):
    """AOPC of arbitrary word values, via the same scorer the app uses."""
    from dataclasses import replace

    from explainers.attribution import Feature

    features = tuple(Feature(f.text, f.start, f.end, {**f.values, template.label: float(v)})
                     for f, v in zip(template.features, values, strict=True))
    attribution = replace(template, features=features, explained_class=template.label)
    model_fn = CachedModelFunction(classifier)
    masked = MaskedText(make_masker(classifier, "delete"), text)
    return faithfulness(model_fn, masked, attribution)


def agreement(values: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    rho = spearmanr(values, reference).statistic if len(values) > 2 else 1.0
    top = set(np.argsort(-values)[:5]) & set(np.argsort(-reference)[:5])
    return float(np.nan_to_num(rho)), len(top) / min(5, len(values))


CONFIGS = {
    "words, partition, both contexts, int8, 1.6/word (first default)":
        {"context": "both", "precision": "int8"},
    "words, partition, both contexts, float32, 1.6/word": {"context": "both"},
    "words, partition, full context, float32, 2/word": {"context": "full"},
    "words, partition, empty context, int8, 2/word": {"precision": "int8"},
    "words, partition, empty context, float32, 2/word (default)": {},
    "(default) + faithfulness and flip checks": {"with_checks": True},
}


# The reference's own noise: one half of its evaluations scored against the other half.
REFERENCE_ROW = "reference half A vs half B (noise ceiling; exact texts agree fully)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reviews", type=int, default=50)
    parser.add_argument("--reference-evals", type=int, default=5000)
    parser.add_argument("--reference-only", metavar="K/N",
                        help="only compute (and cache) the references of reviews K, K+N, ...: "
                             "run N of these in parallel, one thread each, before the table")
    args = parser.parse_args()
    from transformers import pipeline

    classifier = Classifier.load(ModelRegistry(data_dir()).active_path())
    (_, _), (test, _) = load_demo()
    texts = [text[: classifier.seen_prefix(text)] for text in test.texts[: args.reviews]]
    if args.reference_only:
        return compute_references(classifier, texts, args.reference_evals, args.reference_only)
    pipe = pipeline("text-classification", model=classifier.model,
                    tokenizer=classifier.tokenizer, top_k=None, truncation=True,
                    max_length=classifier.max_length)
    counter = CountingPipeline(pipe)
    explain(classifier, texts[0], with_checks=False)  # warm-up: shap's numba compilation
    scores = {name: Scores() for name in
              [REFERENCE_ROW, "shap default (Partition, word pieces, 500)", *CONFIGS]}
    for n, visible in enumerate(texts, start=1):
        template = explain(classifier, visible, budget=1, with_checks=False, precision="float32")
        label = template.label
        spans = word_spans(visible)
        reference = reference_words(classifier, visible, args.reference_evals, label)
        record(scores[REFERENCE_ROW], classifier, visible, reference.half_a, None,
               args.reference_evals // 2, reference.half_b, template)
        values, seconds, calls = shap_default_words(pipe, counter, visible, spans,
                                                    classifier.labels.index(label))
        record(scores["shap default (Partition, word pieces, 500)"], classifier, visible,
               values, seconds, calls, reference.values, template)
        for name, options in CONFIGS.items():
            start = time.perf_counter()
            result = explain(classifier, visible, target=label,
                             **{"with_checks": False, **options})
            record(scores[name], classifier, visible, result.values_for(label),
                   time.perf_counter() - start, result.model_calls, reference.values,
                   template)
        print(f"review {n}/{len(texts)}: {len(spans)} words", file=sys.stderr, flush=True)
    print_table(scores, len(texts), args.reference_evals)
    return 0


def compute_references(classifier, texts: list[str], evals: int, shard: str) -> int:
    k, n = (int(part) for part in shard.split("/"))
    for i in range(k, len(texts), n):
        start = time.perf_counter()
        label = explain(classifier, texts[i], budget=1, with_checks=False,
                        precision="float32").label
        reference = reference_words(classifier, texts[i], evals, label)
        print(f"reference {i + 1}: {len(reference.values)} words, {reference.method}, "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return 0


def record(score: Scores, classifier, text, values, seconds, calls, reference, template):
    faith = faith_of(classifier, text, values, template)
    rho, top5 = agreement(values, reference)
    if seconds is not None:
        score.seconds.append(seconds)
    score.calls.append(calls)
    score.comprehensiveness.append(faith.comprehensiveness)
    score.sufficiency.append(faith.sufficiency)
    score.spearman.append(rho)
    score.top5.append(top5)


def print_table(scores: dict[str, Scores], n: int, reference_evals: int) -> None:
    print(f"\n{n} demo test reviews; reference: Shapley values of words, exact when "
          f"2^words <= {reference_evals}, else shap's Permutation explainer without a partition "
          f"tree, {reference_evals} evaluations (two halves of {reference_evals // 2})\n")
    print("| method | p50 s | p95 s | model calls | AOPC compr. (higher better) | "
          "AOPC suff. (lower better) | Spearman vs ref | top-5 overlap |")
    print("|---|---|---|---|---|---|---|---|")
    for name, s in scores.items():
        times = (f"{statistics.median(s.seconds):.2f} | {np.percentile(s.seconds, 95):.2f}"
                 if s.seconds else "(cached) | (cached)")
        print(f"| {name} | {times} | {statistics.mean(s.calls):.0f} | "
              f"{statistics.mean(s.comprehensiveness):.3f} | {statistics.mean(s.sufficiency):.3f} "
              f"| {statistics.mean(s.spearman):.2f} | {statistics.mean(s.top5):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
