"""The embedded LLM's second opinions on escalated demo cases.

For the first N test cases of the demo model's test split that its escalation policy escalates:
time to first token, tokens per second, how often the JSON parsed (as written, or repaired),
how often the LLM's label matched the true label (and the classifier's), and how often the
evidence check flagged something.

    .venv/bin/python benchmarks/bench_llm.py [--cases 20] [--max-tokens 160]

Uses the active model in $CASEWISE_HOME and its newest escalation policy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.paths import data_dir
from explainers.attribution import explain
from explainers.second_opinion import evidence_of, second_opinion, word_values_of
from models.classifier import Classifier
from models.escalation import load_policy, predict_and_decide
from models.llm.transformers_backend import TransformersBackend
from models.registry import ModelRegistry
from models.train_job import read_held_out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=160)
    args = parser.parse_args()
    classifier = Classifier.load(ModelRegistry(data_dir()).active_path())
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    texts, truths = read_held_out(classifier.path, "test")
    answers = predict_and_decide(classifier, policy, texts)
    escalated = [(t, y, p, d) for t, y, (p, d) in zip(texts, truths, answers, strict=True)
                 if not d.auto][: args.cases]
    start = time.perf_counter()
    backend = TransformersBackend.embedded()
    load_seconds = time.perf_counter() - start
    rows = []
    for n, (text, truth, prediction, decision) in enumerate(escalated, start=1):
        attribution = explain(classifier, text, with_checks=False)
        opinion = second_opinion(backend, text, classifier.labels,
                                 evidence_of(prediction, decision, attribution),
                                 word_values_of(attribution, prediction.label),
                                 max_tokens=args.max_tokens)
        writing = opinion.seconds - (opinion.first_token_seconds or 0)
        rows.append({
            "ttft": opinion.first_token_seconds, "seconds": opinion.seconds,
            "tokens_per_s": (opinion.tokens_out or 0) / writing if writing > 0 else 0.0,
            "parse": opinion.parse, "label": opinion.label, "truth": truth,
            "classifier": prediction.label, "flagged": any(
                f.severity == "warning" for f in opinion.check), "error": opinion.error})
        print(f"case {n}/{len(escalated)}: {opinion.parse}, LLM {opinion.label}, truth {truth}, "
              f"{opinion.seconds:.1f} s", file=sys.stderr, flush=True)
    print_table(rows, load_seconds, args.max_tokens)
    return 0


def share(rows: list[dict], test) -> str:
    hits = sum(1 for r in rows if test(r))
    return f"{hits}/{len(rows)} ({hits / len(rows):.0%})"


def print_table(rows: list[dict], load_seconds: float, max_tokens: int) -> None:
    print(f"\nEmbedded SmolLM2-135M-Instruct (Q4_1 GGUF via transformers), {len(rows)} escalated "
          f"demo test cases, at most {max_tokens} tokens each; model load {load_seconds:.1f} s\n")
    print("| measure | value |")
    print("|---|---|")
    ttft = [r["ttft"] for r in rows if r["ttft"] is not None]
    print(f"| time to first token, p50 / max | {statistics.median(ttft):.2f} s / "
          f"{max(ttft):.2f} s |")
    speed = statistics.median(r["tokens_per_s"] for r in rows)
    print(f"| tokens per second, median | {speed:.1f} |")
    print(f"| answer time, p50 | {statistics.median(r['seconds'] for r in rows):.1f} s |")
    print(f"| answer structured in guided steps (in-process model: the JSON is the app's, the "
          f"label chosen by likelihood) | {share(rows, lambda r: r['parse'] == 'guided')} |")
    print(f"| JSON parsed as written | {share(rows, lambda r: r['parse'] == 'json')} |")
    print(f"| JSON parsed after repair or field recovery | "
          f"{share(rows, lambda r: r['parse'] in {'repaired', 'fields'})} |")
    print(f"| no label in the label set | {share(rows, lambda r: r['label'] is None)} |")
    print(f"| LLM label = true label | {share(rows, lambda r: r['label'] == r['truth'])} |")
    print(f"| classifier label = true label | "
          f"{share(rows, lambda r: r['classifier'] == r['truth'])} |")
    print(f"| check flagged something (a warning) | {share(rows, lambda r: r['flagged'])} |")
    print(f"| errors | {share(rows, lambda r: r['error'] is not None)} |")


if __name__ == "__main__":
    sys.exit(main())
