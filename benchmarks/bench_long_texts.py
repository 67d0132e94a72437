"""Long texts read whole: pooling the windows of a text ("mean", "max") against reading its
first window only ("first", what models trained before pooling do), on the same splits.

    .venv/bin/python benchmarks/bench_long_texts.py [--only medical|demo] [--epochs N]

Medical abstracts (mostly longer than the 256-token window): "first" and "mean" are each
trained through the app's own path (``train_and_save``: splits, fine-tuning, temperature,
escalation policy, card); "max" is the "mean" model read with max pooling, its temperature
refitted on the validation split and its escalation policy on the calibration split (product
functions), so that its calibration and escalation numbers are its own. Demo (drug reviews,
mostly short): the same three. Everything is trained into a temporary CASEWISE_HOME.

The table goes to stdout and to benchmarks/out/long_texts.md (rewritten after every row).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
HOME = tempfile.TemporaryDirectory(prefix="casewise-bench-long-")
os.environ["CASEWISE_HOME"] = HOME.name  # never the user's folders
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import json  # noqa: E402

import numpy as np  # noqa: E402

from models.classifier import Classifier  # noqa: E402
from models.escalation import fit_policy, load_policy, predict_and_decide  # noqa: E402
from models.escalation_evidence import evaluate_policy  # noqa: E402
from models.registry import ModelRegistry  # noqa: E402
from models.train_job import (  # noqa: E402
    DatasetSpec,
    evaluate_splits,
    load_splits,
    quiet_metrics,
    read_held_out,
    train_and_save,
)
from models.training import FineTuneResult, TrainingConfig  # noqa: E402
from models.windows import READ_LIMIT_TOKENS, WINDOW_OVERLAP  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "long_texts.md"
# bench_classifier's medical row (README) was run with --epochs 3 to keep it near 15 minutes.
DEFAULT_EPOCHS = {"medical": 3, "demo": None}  # None: the app's default

HEADER = ["data", "pooling", "accuracy", "macro-F1", "ECE (T)", "truncated esc.",
          "coverage (AUTO)", "AUTO error", "training", "p50 1 case: 10 longest / 50 random",
          "windows/text mean / max"]


def medical_spec() -> DatasetSpec | None:
    path = SHARED / "medical_abstracts" / "medical_tc_test.csv"
    if not path.is_file():
        return None
    return DatasetSpec("medical abstracts", path, "medical_abstract", "condition_label")


def p50_single(classifier: Classifier, texts: list[str]) -> float:
    classifier.predict(texts[0])  # warm-up
    times = []
    for text in texts:
        start = time.perf_counter()
        classifier.predict(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def latency(classifier: Classifier, texts: list[str]) -> str:
    longest = sorted(texts, key=len, reverse=True)[:10]
    sample = random.Random(13).sample(texts, min(50, len(texts)))
    return f"{p50_single(classifier, longest):.0f} / {p50_single(classifier, sample):.0f} ms"


def app_numbers(classifier: Classifier, policy, texts: list[str], labels: list[str]) -> dict:
    """What the app says for each test case (``predict_and_decide``), summed up."""
    answers = predict_and_decide(classifier, policy, texts)
    correct = np.array([p.label == y for (p, _), y in zip(answers, labels, strict=True)])
    auto = np.array([d.auto for _, d in answers])
    windows = np.array([p.windows for p, _ in answers])
    truncated = sum("truncated" in d.reason_codes for _, d in answers)
    reasons: dict[str, int] = {}
    for _, d in answers:
        for code in d.reason_codes:
            reasons[code] = reasons.get(code, 0) + 1
    return {"accuracy_app": float(correct.mean()), "n": len(texts),
            "truncated": truncated, "n_auto": int(auto.sum()),
            "coverage": float(auto.mean()),
            "auto_error": float((~correct[auto]).mean()) if auto.any() else None,
            "auto_wrong": int((~correct[auto]).sum()),
            "windows_mean": float(windows.mean()), "windows_max": int(windows.max()),
            "reasons": reasons}


def row_of(name: str, pooling: str, test: dict, app: dict, training: str, p50: str) -> dict:
    return {"cells": [
        name, pooling, f"{test['accuracy']:.3f}", f"{test['macro_f1']:.3f}",
        f"{test['ece_before']:.3f} -> {test['ece_after']:.3f}",
        f"{app['truncated']}/{app['n']}", f"{app['coverage']:.1%} ({app['n_auto']})",
        "–" if app["auto_error"] is None else f"{app['auto_error']:.1%} ({app['auto_wrong']})",
        training, p50, f"{app['windows_mean']:.2f} / {app['windows_max']}"],
        "reasons": app["reasons"]}


def trained(name: str, spec: DatasetSpec, config: TrainingConfig, registry: ModelRegistry):
    """Train through the app's path; the row, and the loaded model (for the max reading)."""
    print(f"[{datetime.now():%H:%M:%S}] training {name} pooling={config.pooling} ...",
          flush=True)
    start = time.monotonic()
    record = train_and_save(spec, registry, config)
    wall = time.monotonic() - start
    path = Path(record.path)
    card = json.loads((path / "model_card.json").read_text())
    classifier = Classifier.load(path)
    policy = load_policy(path, classifier.model_id, classifier.labels)
    texts, labels = read_held_out(path, "test")
    app = app_numbers(classifier, policy, texts, labels)
    esc = card["escalation"]
    app["card_coverage"], app["card_auto_error"] = esc["coverage"], esc["auto_error"]
    epochs = f"{card['training']['epochs_run']} (best {card['training']['best_epoch']})"
    row = row_of(name, config.pooling, card["metrics"]["test"], app,
                 f"{wall:.0f} s, {epochs} ep", latency(classifier, texts))
    row["card"] = {"coverage": esc["coverage"], "auto_error": esc["auto_error"],
                   "reasons": esc.get("escalation_reasons")}
    print(f"[{datetime.now():%H:%M:%S}] done {name} {config.pooling}: wall {wall:.0f} s, "
          f"fine-tune {card['training']['seconds']:.0f} s", flush=True)
    return row, classifier, texts, labels


def read_with_max(name: str, spec: DatasetSpec, config: TrainingConfig,
                  classifier: Classifier, texts: list[str], labels: list[str]) -> dict:
    """The mean-trained model read with max pooling; temperature refitted on validation and
    the escalation policy on calibration, as ``train_and_save`` does."""
    print(f"[{datetime.now():%H:%M:%S}] refitting {name} read with max ...", flush=True)
    start = time.monotonic()
    splits, _ = load_splits(spec, config.seed)
    split_labels = splits.labels()
    assert split_labels == classifier.labels, (split_labels, classifier.labels)
    result = FineTuneResult(classifier.model, classifier.tokenizer)
    with quiet_metrics():
        temperature, metrics, held_out = evaluate_splits(
            result, splits, split_labels, classifier.max_length, None, "max")
        policy = fit_policy(held_out.scores["calibration"], held_out.truth["calibration"],
                            split_labels, classifier.model_id)
        evidence = evaluate_policy(policy, held_out.scores["test"], held_out.truth["test"])
    refit = time.monotonic() - start
    classifier.pooling, classifier.temperature = "max", temperature
    app = app_numbers(classifier, policy, texts, labels)
    row = row_of(name, "max (mean model, T + policy refit)", metrics["test"], app,
                 f"none (mean's weights); refit {refit:.0f} s", latency(classifier, texts))
    row["card"] = {"coverage": evidence["coverage"], "auto_error": evidence["auto_error"],
                   "reasons": evidence["escalation_reasons"]}
    return row


def header_line(args, epochs: dict) -> str:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").is_file() else platform.processor()
    settings = ", ".join(f"{k}: {v or 'app default (max 6, min 4, patience 2)'} epochs"
                         for k, v in epochs.items())
    extra = f", max_steps {args.max_steps}" if args.max_steps else ""
    return (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on a {os.cpu_count()}-core CPU "
            f"({cpu}), torch {torch.__version__} with {torch.get_num_threads()} threads, shared "
            f"with other test runs. Settings: {settings}{extra}; max_length 256, window overlap "
            f"{WINDOW_OVERLAP}, read limit {READ_LIMIT_TOKENS} tokens, seed 13, the app's split "
            "recipe. Training is the wall time of `train_and_save` (data, fine-tuning, "
            "evaluation, baseline, policy, saving).")


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row["cells"]) + " |" for row in rows]
    return "\n".join(lines)


def write(out: Path, header: str, rows: list[dict], pending: list[str]) -> str:
    notes = ["", "Escalation reasons on the test split (app: `predict_and_decide`; "
             "card/refit: `evaluate_policy`, coverage and AUTO error):", ""]
    for row in rows:
        card = row["card"]
        auto_error = "–" if card["auto_error"] is None else f"{card['auto_error']:.1%}"
        notes.append(f"- {row['cells'][0]} / {row['cells'][1]}: app {row['reasons']}; "
                     f"card coverage {card['coverage']:.1%}, AUTO error {auto_error}")
    if pending:
        notes += ["", "Did not finish: " + ", ".join(pending) + "."]
    text = "\n".join(["# Long texts: window pooling", "", header, "", table(rows), *notes, ""])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return text


ORDER = {"first": 0, "mean": 1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["medical", "demo"])
    parser.add_argument("--epochs", type=int, help="maximum epochs for every run (default: 3 "
                        "for medical, as bench_classifier's README row; the app's for demo)")
    parser.add_argument("--max-steps", type=int, help="stop training after this many steps "
                        "(smoke tests)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    names = [args.only] if args.only else ["medical", "demo"]
    specs = {"medical": medical_spec(), "demo": DatasetSpec.demo()}
    if "medical" in names and specs["medical"] is None:
        print(f"skipping medical: its files are not in {SHARED}")
        names.remove("medical")
    if not names:
        return 0
    epochs = {name: args.epochs or DEFAULT_EPOCHS[name] for name in names}
    header = header_line(args, epochs)
    print(header + "\n", flush=True)
    # Medical trains "mean" first: the new behaviour is the one to have if time runs out.
    plan = [(name, pooling) for name in names
            for pooling in (("mean", "first") if name == "medical" else ("first", "mean"))]
    pending = [f"{name} {pooling}" for name, pooling in plan]
    rows: list[dict] = []
    registry = ModelRegistry(Path(HOME.name))
    for name, pooling in plan:
        overrides = {k: v for k, v in {"max_epochs": epochs[name],
                                       "max_steps": args.max_steps}.items() if v}
        config = TrainingConfig(pooling=pooling, **overrides)
        row, classifier, texts, labels = trained(name, specs[name], config, registry)
        rows.append(row)
        if pooling == "mean":
            rows.append(read_with_max(name, specs[name], config, classifier, texts, labels))
        pending.remove(f"{name} {pooling}")
        rows.sort(key=lambda r: (names.index(r["cells"][0]),
                                 ORDER.get(r["cells"][1], 2)))
        text = write(args.out, header, rows, pending)
        print(table(rows) + "\n", flush=True)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
