"""Word attributions: every estimator against the Shapley values of words, side by side.

On the first demo test reviews and on long texts (the first medical abstracts of
../shared/datasets, explained by the same model — a fidelity test on long inputs, not a
medical model), in one timing pass with the texts interleaved: shap's default, the previous
default (shap's Partition explainer, empty context), the in-house estimators (exact, paired
KernelSHAP, the refined partition pass), the amortized explainer and ``auto``. Per row: p50/p95
seconds, model calls, words evaluated, AOPC comprehensiveness and sufficiency, and agreement with
the reference (Spearman, top-5 by value and by |value|), the share of answers whose top words
were settled, and the efficiency gap.

The reference (benchmarks/attribution_reference.py) is exact for texts of at most 10 words and
otherwise antithetic permutation pairs kept per pair, so its own noise is reported: mean of 20
random half-against-half splits, and the Spearman–Brown reliability of the whole.

The amortized explainer is fitted here on the demo *training* file (never the test reviews):
sampled values cached in benchmarks/out/attribution/, heads and gate as the app fits them.

    .venv/bin/python benchmarks/bench_attribution.py [--demo 50] [--long 30]
        [--demo-pairs 16] [--long-pairs 4] [--targets 600] [--rows ...] [--references-only]

Uses the active model in $CASEWISE_HOME (train one with `python main.py train`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import shap
from attribution_amortized import cached_targets
from attribution_reference import Reference, reference, spearman_brown, split_half
from attribution_texts import demo_texts, long_texts

from app.paths import data_dir
from explainers.amortized import TARGET_SEED
from explainers.amortized_store import GATE_PAIRS, explainer_from_targets, gate_texts
from explainers.attribution import MaskedText, explain, make_masker
from explainers.estimators import spearman, top_overlap
from explainers.faithfulness import faithfulness
from explainers.model_function import CachedModelFunction
from explainers.types import Attribution, Feature
from explainers.words import word_spans
from models.classifier import Classifier
from models.data import load_demo
from models.registry import ModelRegistry

SHAP_DEFAULT = "shap default (Partition, word pieces, 500)"
# Row name -> explain() options; "amortized" rows get the benchmark's fitted explainer.
ROWS = {
    "partition, empty context, 2/word (previous default)": {"method": "partition"},
    "(previous default) + faithfulness and flip checks": {"method": "partition",
                                                          "with_checks": True},
    "KernelSHAP paired, from zero, 4/word": {"method": "kernel", "stop_when_settled": False},
    "refined: partition, then KernelSHAP to 4/word": {"method": "refined",
                                                      "stop_when_settled": False},
    "refined, stopping when the top words settle (cap 4/word)": {"method": "refined"},
    "amortized explainer alone": {"method": "amortized"},
    "amortized alone, the prediction's probabilities reused (as the pipeline does)": {
        "method": "amortized", "known": True},
    "amortized + checks (auto without refinement: batch scoring)": {
        "method": "auto", "refine": False, "with_checks": True},
    "auto: amortized, then KernelSHAP until settled (cap 4/word)": {"method": "auto"},
    "auto + checks (the window and `explain`)": {"method": "auto", "with_checks": True},
}


@dataclass
class Scores:
    seconds: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)
    words: list[int] = field(default_factory=list)
    comprehensiveness: list[float] = field(default_factory=list)
    sufficiency: list[float] = field(default_factory=list)
    spearman: list[float] = field(default_factory=list)
    top5: list[float] = field(default_factory=list)
    top5_abs: list[float] = field(default_factory=list)
    settled: list[bool] = field(default_factory=list)
    top5_abs_settled: list[float] = field(default_factory=list)
    gap: list[float] = field(default_factory=list)


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


def faith_of(classifier, text: str, values: np.ndarray, template: Attribution):
    """AOPC of arbitrary word values, via the same scorer the app uses."""
    features = tuple(Feature(f.text, f.start, f.end, {**f.values, template.label: float(v)})
                     for f, v in zip(template.features, values, strict=True))
    attribution = replace(template, features=features, explained_class=template.label)
    masked = MaskedText(make_masker(classifier, "delete"), text)
    return faithfulness(CachedModelFunction(classifier), masked, attribution)


def record(score: Scores, classifier, text: str, values: np.ndarray, seconds, calls: int,
           ref: np.ndarray, template: Attribution, result: Attribution | None = None) -> None:
    faith = faith_of(classifier, text, values, template)
    if seconds is not None:
        score.seconds.append(seconds)
    score.calls.append(calls)
    score.comprehensiveness.append(faith.comprehensiveness)
    score.sufficiency.append(faith.sufficiency)
    score.spearman.append(spearman(values, ref))
    score.top5.append(top_overlap(values, ref, signed=True))
    score.top5_abs.append(top_overlap(values, ref))
    if result is not None:
        score.words.append(result.words_evaluated)
        score.gap.append(result.efficiency_gap())
        if result.uncertainty is not None:
            score.settled.append(result.uncertainty.settled)
            if result.uncertainty.settled:
                score.top5_abs_settled.append(score.top5_abs[-1])


def fit_amortized(classifier, n_texts: int):
    (train, _), _ = load_demo()
    texts = list(train.texts[:n_texts])
    start = time.process_time()
    targets = cached_targets(classifier, texts)
    held = gate_texts(classifier, texts)
    # The gate's extra pairs, cached like the targets (the same seeds the app would use).
    extra = cached_targets(classifier, [texts[i] for i in held], GATE_PAIRS, TARGET_SEED + 1)
    explainer = explainer_from_targets(classifier, texts, targets,
                                       target_seconds=time.process_time() - start,
                                       extra_gate_targets=extra)
    print(f"amortized explainer: {len(texts)} training texts; gate "
          f"{explainer.record['gate']}; heads+gate CPU "
          f"{explainer.record['cpu_seconds']['heads_and_gate']} s", file=sys.stderr)
    return replace(explainer, enabled=True)  # measured whatever its gate said


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", type=int, default=50)
    parser.add_argument("--long", type=int, default=30)
    parser.add_argument("--demo-pairs", type=int, default=16)
    parser.add_argument("--long-pairs", type=int, default=4)
    parser.add_argument("--targets", type=int, default=600,
                        help="demo training texts the amortized explainer is fitted on")
    parser.add_argument("--rows", nargs="*", help="only these rows (names as printed)")
    parser.add_argument("--no-shap-long", action="store_true",
                        help="skip shap's default on the long texts (minutes each)")
    parser.add_argument("--no-shap", action="store_true", help="skip shap's default row")
    parser.add_argument("--references-only", action="store_true")
    args = parser.parse_args()

    classifier = Classifier.load(ModelRegistry(data_dir()).active_path())
    corpora = {"demo": (demo_texts(classifier, args.demo), args.demo_pairs),
               "long": (long_texts(classifier, args.long), args.long_pairs)}
    for name, (texts, pairs) in corpora.items():
        for i, text in enumerate(texts):
            start = time.perf_counter()
            ref = reference(classifier, text, pairs)
            print(f"{name} reference {i + 1}/{len(texts)}: {len(word_spans(text))} words, "
                  f"{ref.method}, {time.perf_counter() - start:.0f} s", file=sys.stderr,
                  flush=True)
    if args.references_only:
        return 0
    amortized = fit_amortized(classifier, args.targets)
    rows = {k: v for k, v in ROWS.items() if not args.rows or k in args.rows}
    from transformers import pipeline

    pipe = pipeline("text-classification", model=classifier.model,
                    tokenizer=classifier.tokenizer, top_k=None, truncation=True,
                    max_length=classifier.max_length)
    counter = CountingPipeline(pipe)
    first = next(texts[0] for texts, _ in corpora.values() if texts)
    explain(classifier, first, with_checks=False, method="partition")  # warm-up
    load = os.getloadavg()[0]
    tables = {}
    for name, (texts, pairs) in corpora.items():
        if not texts:
            continue
        shap_row = not (args.no_shap or (name == "long" and args.no_shap_long))
        tables[name] = run_corpus(classifier, texts, pairs, rows, amortized,
                                  (pipe, counter) if shap_row else None, name)
    print(f"\nload average at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}")
    for name, (scores, exact_rows, ceiling) in tables.items():
        print_table(name, scores, exact_rows, ceiling, corpora[name])
    return 0


def run_corpus(classifier, texts, pairs, rows, amortized, shap_pipe, name):
    scores = {SHAP_DEFAULT: Scores()} if shap_pipe else {}
    scores.update({row: Scores() for row in rows})
    exact_rows: dict[str, list[float]] = {"exact (auto's answer for ≤ 12 words)": []}
    ceiling = []
    for n, text in enumerate(texts, start=1):
        template = explain(classifier, text, budget=1, with_checks=False, method="partition")
        label, column = template.label, classifier.labels.index(template.label)
        ref: Reference = reference(classifier, text, pairs)
        ceiling.append((split_half(ref, column), ref.method))
        spans = word_spans(text)
        if shap_pipe:
            values, seconds, calls = shap_default_words(*shap_pipe, text, spans, column)
            record(scores[SHAP_DEFAULT], classifier, text, values, seconds, calls,
                   ref.values[:, column], template)
        probabilities = dict(zip(classifier.labels, classifier.probabilities([text])[0],
                                 strict=True))
        for row, options in rows.items():
            options = dict(options)
            known = probabilities if options.pop("known", False) else None
            start = time.perf_counter()
            result = explain(classifier, text, target=label, amortized=amortized,
                             known_probabilities=known, **{"with_checks": False, **options})
            seconds = time.perf_counter() - start
            record(scores[row], classifier, text, result.values_for(label), seconds,
                   result.model_calls, ref.values[:, column], template, result)
            if result.method == "exact" and row.startswith("auto"):
                exact_rows["exact (auto's answer for ≤ 12 words)"].append(seconds)
        print(f"{name} {n}/{len(texts)}: {len(spans)} words", file=sys.stderr, flush=True)
    return scores, exact_rows, ceiling


def print_table(name, scores, exact_rows, ceiling, corpus) -> None:
    texts, pairs = corpus
    halves = np.array([c[0] for c in ceiling])
    sampled = [c[0] for c in ceiling if c[1] == "pairs"]
    half_rho = float(np.mean([s[0] for s in sampled])) if sampled else 1.0
    reliability = spearman_brown(half_rho)
    words = [len(word_spans(t)) for t in texts]
    print(f"\n{name}: {len(texts)} texts, median {statistics.median(words):.0f} words "
          f"(range {min(words)}–{max(words)}); reference: exact for ≤ 10 words "
          f"({len(texts) - len(sampled)} texts), else {pairs} antithetic permutation pairs\n")
    print("| method | p50 s | p95 s | model calls | words evaluated (k) | AOPC compr. | "
          "AOPC suff. | Spearman vs ref | top-5 (value) | top-5 (abs) | settled | "
          "top-5 (abs) when settled | max efficiency gap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| reference half vs half (mean of 20 random splits; reliability of the whole "
          f"{reliability:.2f}) | – | – | – | – | – | – | {halves[:, 0].mean():.2f} | "
          f"{halves[:, 1].mean():.2f} | {halves[:, 2].mean():.2f} | – | – | – |")
    for row, s in scores.items():
        if not s.calls:
            continue
        times = (f"{statistics.median(s.seconds):.2f} | {np.percentile(s.seconds, 95):.2f}"
                 if s.seconds else "– | –")
        # shap's explainers do not count the words they evaluate.
        words_k = f"{statistics.mean(s.words) / 1000:.1f}" if any(s.words) else "–"
        settled = f"{np.mean(s.settled):.0%}" if s.settled else "–"
        when = f"{np.mean(s.top5_abs_settled):.2f}" if s.top5_abs_settled else "–"
        gap = f"{max(s.gap):.0e}" if s.gap else "–"
        print(f"| {row} | {times} | {statistics.mean(s.calls):.0f} | {words_k} | "
              f"{statistics.mean(s.comprehensiveness):.3f} | "
              f"{statistics.mean(s.sufficiency):.3f} | {statistics.mean(s.spearman):.2f} | "
              f"{statistics.mean(s.top5):.2f} | {statistics.mean(s.top5_abs):.2f} | "
              f"{settled} | {when} | {gap} |")
    for row, seconds in exact_rows.items():
        if seconds:
            print(f"\n{row}: {len(seconds)} texts, p50 {statistics.median(seconds):.2f} s, "
                  f"max {max(seconds):.2f} s")


if __name__ == "__main__":
    sys.exit(main())
