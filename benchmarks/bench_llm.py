"""The LLM's second opinions on escalated demo cases, in-process and through a real server,
each beside what the app did before (issue 20).

For the first N test cases of the demo model's test split that its escalation policy escalates
(each with its attributions in the prompt, as the app sends them):

- ``embedded, words written (before)``: the embedded SmolLM2 in-process, its cited words
  written freely, as the app did before they were chosen among the case's words;
- ``embedded (now)``: the same model, cited words chosen by likelihood among the case's words;
- ``server, no penalty or guard (before)``: ``transformers serve`` on loopback serving the
  embedded model as ``main.py export-llm`` writes it, asked without a frequency penalty, the
  whole answer read (loops are counted afterwards by the same detector);
- ``server (now)``: with the penalty and the answer guard.

Measured: time to first token, tokens per second, answer time, how the answer was read, label
in the label set, LLM label = true label, invented cited words (not in the case), the
counterfactual rationale check, repetition loops, errors.

    .venv/bin/python benchmarks/bench_llm.py [--cases 20] [--max-tokens 160] [--home DIR]
        [--configs embedded-before embedded server-before server]

Uses the active model in --home (default: $CASEWISE_HOME or the user's data folder) and its
newest escalation policy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import explainers.second_opinion as second_opinion_module  # noqa: E402
import models.llm.openai_backend as openai_module  # noqa: E402
from explainers.attribution import explain  # noqa: E402
from explainers.rationale_check import with_rationale_check  # noqa: E402
from explainers.second_opinion import evidence_of, second_opinion, word_values_of  # noqa: E402
from models.llm.answer_guard import AnswerGuard  # noqa: E402
from models.llm.openai_backend import OpenAICompatibleBackend  # noqa: E402
from models.llm.transformers_backend import TransformersBackend  # noqa: E402

CONFIGS = {"embedded-before": "embedded, words written (before)",
           "embedded": "embedded (now)",
           "server-before": "server, no penalty or guard (before)",
           "server": "server (now)"}


# --- what the app did before, for the "before" columns ------------------------------------


def written_words(backend, turn, so_far, candidates, cancel):
    """The cited words as the app took them before: written freely by the model."""
    words = "".join(backend.stream(turn(so_far + '"'), max_tokens=40, cancel=cancel,
                                   stop="]"))
    return [w.strip(' "\n') for w in words.split("]", 1)[0].split(",") if w.strip(' "\n')]


class NoGuard(AnswerGuard):
    """Reads the whole answer, as the app did before (loops are counted afterwards)."""

    @property
    def should_stop(self) -> bool:
        return False

    def accept(self, piece: str) -> str:
        self.text += piece
        return piece


@contextmanager
def before(config: str):
    saved = (second_opinion_module._cited_words, second_opinion_module.AnswerGuard,
             openai_module.FREQUENCY_PENALTY)
    if config == "embedded-before":
        second_opinion_module._cited_words = written_words
    if config == "server-before":
        second_opinion_module.AnswerGuard = NoGuard
        openai_module.FREQUENCY_PENALTY = 0.0
    try:
        yield
    finally:
        (second_opinion_module._cited_words, second_opinion_module.AnswerGuard,
         openai_module.FREQUENCY_PENALTY) = saved


def looped(opinion) -> bool:
    if any(f.kind == "repetition" for f in opinion.check):
        return True
    guard = AnswerGuard(json_answer=False)  # the same detector, over the whole answer
    guard.accept(opinion.raw_text)
    return guard.stopped is not None


# --- one configuration ---------------------------------------------------------------------


def run_config(config: str, backend, cases: list, classifier, max_tokens: int) -> list[dict]:
    rows = []
    with before(config):
        for n, (text, truth, prediction, decision, attribution) in enumerate(cases, start=1):
            opinion = second_opinion(backend, text, classifier.labels,
                                     evidence_of(prediction, decision, attribution),
                                     word_values_of(attribution, prediction.label),
                                     max_tokens=max_tokens)
            opinion = with_rationale_check(classifier, text, opinion, attribution)
            lowered = text.lower()
            invented = [w for w in opinion.cited_words if w.lower() not in lowered]
            writing = opinion.seconds - (opinion.first_token_seconds or 0)
            rows.append({
                "ttft": opinion.first_token_seconds, "seconds": opinion.seconds,
                "tokens_per_s": (opinion.tokens_out or 0) / writing if writing > 0 else None,
                "parse": opinion.parse, "label": opinion.label, "truth": truth,
                "classifier": prediction.label, "cited": len(opinion.cited_words),
                "invented": len(invented), "rationale": None if opinion.rationale is None
                else opinion.rationale.holds, "loop": looped(opinion),
                "distribution": opinion.label_probabilities is not None,
                "error": opinion.error})
            print(f"{CONFIGS[config]} {n}/{len(cases)}: {opinion.parse}, LLM {opinion.label}, "
                  f"truth {truth}, invented {invented}, {opinion.seconds:.1f} s",
                  file=sys.stderr, flush=True)
    return rows


def served_backend(scratch: Path):
    from tests.helpers.served_llm import ServedLLM, served_model

    served = ServedLLM(served_model(scratch)).start().wait_ready()
    return served, OpenAICompatibleBackend(served.url, served.model, timeout=300.0,
                                           max_retries=0)


# --- the table -----------------------------------------------------------------------------


def share(rows: list[dict], test) -> str:
    hits = sum(1 for r in rows if test(r))
    return f"{hits}/{len(rows)}"


def median(values) -> str:
    values = [v for v in values if v is not None]
    return f"{statistics.median(values):.2f}" if values else "–"


MEASURES = [
    ("time to first token, p50 (s)", lambda rows: median(r["ttft"] for r in rows)),
    ("tokens per second, median", lambda rows: median(r["tokens_per_s"] for r in rows)),
    ("answer time, p50 (s)", lambda rows: median(r["seconds"] for r in rows)),
    ("read: guided steps / JSON / repaired or fields / not",
     lambda rows: " / ".join(share(rows, lambda r, p=p: r["parse"] in p) for p in
                             ({"guided"}, {"json"}, {"repaired", "fields"}, {"none"}))),
    ("label in the label set", lambda rows: share(
        rows, lambda r: r["label"] not in (None, "cannot tell"))),
    ("LLM label = true label", lambda rows: share(rows, lambda r: r["label"] == r["truth"])),
    ("classifier label = true label",
     lambda rows: share(rows, lambda r: r["classifier"] == r["truth"])),
    ("invented cited words (of all cited)", lambda rows: (
        f"{sum(r['invented'] for r in rows)}/{sum(r['cited'] for r in rows)}")),
    ("answers citing an invented word", lambda rows: share(rows, lambda r: r["invented"])),
    ("rationale check: words drive the small model / do not / not checked",
     lambda rows: " / ".join(share(rows, lambda r, v=v: r["rationale"] is v)
                             for v in (True, False, None))),
    ("label distribution shown", lambda rows: share(rows, lambda r: r["distribution"])),
    ("repetition loops", lambda rows: share(rows, lambda r: r["loop"])),
    ("errors", lambda rows: share(rows, lambda r: r["error"] is not None)),
]


def print_table(results: dict[str, list[dict]], loads: dict[str, float], max_tokens: int) -> None:
    n = len(next(iter(results.values())))
    print(f"\nSmolLM2-135M-Instruct on {n} escalated demo test cases, at most {max_tokens} "
          "tokens each; load: " + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()) + "\n")
    names = [CONFIGS[c] for c in results]
    print("| measure | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for title, measure in MEASURES:
        print(f"| {title} | " + " | ".join(measure(rows) for rows in results.values()) + " |")


def escalated_cases(home: Path, count: int):
    from models.classifier import Classifier
    from models.escalation import load_policy, predict_and_decide
    from models.registry import ModelRegistry
    from models.train_job import read_held_out

    classifier = Classifier.load(ModelRegistry(home).active_path())
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    texts, truths = read_held_out(classifier.path, "test")
    answers = predict_and_decide(classifier, policy, texts)
    chosen = [(t, y, p, d) for t, y, (p, d) in zip(texts, truths, answers, strict=True)
              if not d.auto][:count]
    return classifier, [(t, y, p, d, explain(classifier, t, with_checks=False))
                        for t, y, p, d in chosen]


def main() -> int:
    from app.paths import data_dir

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--home", type=Path, help="a CASEWISE_HOME with a trained demo model")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    home = args.home or data_dir()
    os.environ["CASEWISE_HOME"] = str(home)
    classifier, cases = escalated_cases(home, args.cases)
    results: dict[str, list[dict]] = {}
    loads: dict[str, float] = {}
    served = None
    with tempfile.TemporaryDirectory(prefix="casewise-bench-llm-") as scratch:
        try:
            for config in args.configs:
                start = time.perf_counter()
                if config.startswith("embedded"):
                    backend = TransformersBackend.embedded()
                    loads.setdefault("embedded", time.perf_counter() - start)
                else:
                    if served is None:
                        served, backend = served_backend(Path(scratch))
                        loads["server (export + start)"] = time.perf_counter() - start
                results[config] = run_config(config, backend, cases, classifier,
                                             args.max_tokens)
        finally:
            if served is not None:
                served.stop()
    print_table(results, loads, args.max_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
