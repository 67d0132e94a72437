"""Training that makes the most of little data (issue 16): today's fine-tune against SetFit, a
seed ensemble and stacking with the TF-IDF baseline, and learning curves, on the app's splits.

    /work/sfvenv/bin/python benchmarks/bench_small_data.py [--stop-at HH:MM] [--skip-banking]

(SetFit is the app's own recipe, ``models.setfit_recipe``; its rows are skipped, saying so,
when ``import setfit`` fails.)

Every candidate is scored the same way. Its logits on the validation, calibration and test
splits (SetFit, TF-IDF: the head's log-probabilities); a temperature fitted on validation
(stacking: none, its weights are fitted on validation by NLL); accuracy, macro-F1 and ECE on
test; AURC of the top calibrated probability on test; and the app's escalation policy
(``fit_policy`` on calibration, ``evaluate_policy`` on test): coverage (AUTO) and error among
AUTO cases. Nothing is fitted on calibration or test. The policy's distance check uses the
model's own embeddings (fine-tune: mean of the last hidden states; ensemble: its first
member's; SetFit: its body's sentence embedding; TF-IDF: its L2-normalised TF-IDF vector).

Learning curves keep validation, calibration and test unchanged and subsample train to k
examples per class (seeded, stratified; a class with fewer keeps all). Everything runs in a
temporary CASEWISE_HOME. Tables go to stdout and benchmarks/out/small_data.md (rewritten after
every row), the raw numbers to benchmarks/out/small_data.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
HOME = tempfile.TemporaryDirectory(prefix="casewise-bench-small-")
os.environ["CASEWISE_HOME"] = HOME.name  # never the user's folders
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.baseline import baseline_probabilities, fit_baseline  # noqa: E402
from models.calibration import calibrated_probabilities, fit_temperature  # noqa: E402
from models.classifier import CaseScores  # noqa: E402
from models.embedded import base_encoder_dir  # noqa: E402
from models.escalation import fit_policy  # noqa: E402
from models.escalation_evidence import evaluate_policy  # noqa: E402
from models.inference import encode, forward_logits, forward_outputs  # noqa: E402
from models.metrics import classification_report, expected_calibration_error  # noqa: E402
from models.splits import Splits  # noqa: E402
from models.train_job import DatasetSpec, load_splits, quiet_metrics  # noqa: E402
from models.training import FineTuneResult, TrainingConfig, fine_tune  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out" / "small_data.md"
SEED = 13
ENSEMBLE_SEEDS = (13, 14, 15)
SIZES = (8, 16, 32, 64)
BANKING_SIZES = (8, 16)
EVAL_SPLITS = ("validation", "calibration", "test")
HELD_OUT = ("calibration", "test")
# The app's SetFit recipe with its defaults (TrainingConfig: batch 16, 5 iterations, one
# epoch, window 256, encoder learning rate 2e-5; a class-balanced logistic-regression head).
SETFIT_CONFIG = {"batch_size": 16, "setfit_iterations": 5, "max_length": 256}
CREATED = "2026-01-01T00:00:00+00:00"  # fixed: policies fitted here are never saved
P50_CASES = 30
# The SetFit run on the full demo train split was measured before this script (same recipe,
# same splits, seed 13); it took 33 minutes, so it is not rerun here. Only accuracy, macro-F1
# and training time were recorded.
PRIOR_SETFIT_FULL = {"accuracy": 0.689, "macro_f1": 0.488, "seconds": 1953.0}

HEADER = ["data", "train / class", "n train", "candidate", "accuracy", "macro-F1", "ECE (T)",
          "AURC", "coverage (AUTO)", "AUTO error", "training", "p50 1 case"]


def stamp() -> str:
    return f"[{datetime.now(UTC):%H:%M:%S}]"


def setfit_available() -> str | None:
    """None when SetFit imports, else why not."""
    try:
        import setfit  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install
        return f"{type(exc).__name__}: {exc}"
    return None


def banking_spec() -> DatasetSpec | None:
    banking = SHARED / "banking77"
    if not (banking / "train.csv").is_file() or not (banking / "test.csv").is_file():
        return None
    return DatasetSpec("banking77", banking / "train.csv", "text", "category",
                       test_path=banking / "test.csv")


def subsample(splits: Splits, per_class: int, seed: int) -> Splits:
    """Train cut to ``per_class`` examples of each class (seeded); the other splits unchanged."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    train = splits.train
    for label in sorted(set(train.labels)):
        members = [i for i, y in enumerate(train.labels) if y == label]
        chosen += [int(i) for i in rng.permutation(members)[:per_class]]
    return dataclasses.replace(splits, train=train.subset(sorted(chosen)))


@dataclasses.dataclass
class Outputs:
    """A candidate's view of the evaluation splits."""

    logits: dict[str, np.ndarray]  # validation, calibration, test (uncalibrated)
    embeddings: dict[str, np.ndarray]  # calibration, test (unit length)
    reads: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # truncated, n_tokens, windows


def reads_of(encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.array(encoded.truncated, dtype=bool), np.array(encoded.full_lengths),
            np.array(encoded.n_windows))


class Data:
    def __init__(self, name: str, splits: Splits) -> None:
        self.name, self.splits = name, splits
        self.labels = splits.labels()
        index = {label: i for i, label in enumerate(self.labels)}
        self.texts = {n: list(getattr(splits, n).texts) for n in ("train", *EVAL_SPLITS)}
        self.truth = {n: np.array([index[y] for y in getattr(splits, n).labels])
                      for n in ("train", *EVAL_SPLITS)}
        self.p50_texts = random.Random(SEED).sample(self.texts["test"],
                                                    min(P50_CASES, len(self.texts["test"])))

    def with_train(self, splits: Splits) -> Data:
        data = Data(self.name, splits)
        assert data.labels == self.labels, "a subsample lost a class"
        return data


def p50_ms(predict_one: Callable[[str], object], texts: list[str]) -> float:
    predict_one(texts[0])  # warm-up
    times = []
    for text in texts:
        start = time.perf_counter()
        predict_one(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


# --- candidates -----------------------------------------------------------------------------


def fine_tune_outputs(result, data: Data, config: TrainingConfig) -> Outputs:
    """As ``evaluate_splits`` reads the splits, keeping the raw logits."""
    logits, embeddings, reads = {}, {}, {}
    for name in EVAL_SPLITS:
        encoded = encode(result.tokenizer, data.texts[name], config.max_length, config.pooling)
        logits[name], emb = forward_outputs(result.model, encoded, result.tokenizer.pad_token_id,
                                            embeddings=name in HELD_OUT, pooling=config.pooling)
        if name in HELD_OUT:
            embeddings[name], reads[name] = emb, reads_of(encoded)
    return Outputs(logits, embeddings, reads)


def run_fine_tune(data: Data, seed: int):
    config = TrainingConfig(seed=seed)
    print(f"{stamp()} fine-tune {data.name} n={len(data.texts['train'])} seed {seed} ...",
          flush=True)
    start = time.monotonic()
    result = fine_tune(base_encoder_dir(), data.splits, data.labels, config)
    seconds = time.monotonic() - start
    outputs = fine_tune_outputs(result, data, config)

    def one(text: str) -> np.ndarray:
        return forward_logits(result.model, encode(result.tokenizer, [text], config.max_length,
                                                   config.pooling),
                              result.tokenizer.pad_token_id, pooling=config.pooling)

    extra = f"{len(result.history)} ep (best {result.best_epoch})"
    print(f"{stamp()} done fine-tune seed {seed}: {seconds:.0f} s, {extra}", flush=True)
    return result, outputs, seconds, one, extra


def run_baseline(data: Data):
    start = time.monotonic()
    pipeline, c = fit_baseline(data.texts["train"], data.truth["train"],
                               data.texts["validation"], data.truth["validation"], SEED)
    seconds = time.monotonic() - start
    k = len(data.labels)
    logits = {n: np.log(np.clip(baseline_probabilities(pipeline, data.texts[n], k), 1e-6, 1))
              for n in EVAL_SPLITS}
    vectorizer = pipeline.steps[0][1]
    embeddings = {n: vectorizer.transform(data.texts[n]).toarray().astype(np.float32)
                  for n in HELD_OUT}
    reads = {n: (np.zeros(len(data.texts[n]), dtype=bool),
                 np.array([len(t.split()) for t in data.texts[n]]),
                 np.ones(len(data.texts[n]), dtype=int)) for n in HELD_OUT}
    return pipeline, Outputs(logits, embeddings, reads), seconds, f"C={c:g}"


def run_setfit(data: Data, scratch: Path):
    """The app's SetFit recipe (``models.setfit_recipe``), scored like the fine-tune: the
    saved model's logits, its mean-pooled embeddings, windows pooled by the mean."""
    from models.setfit_recipe import setfit_train

    config = TrainingConfig(seed=SEED, recipe="setfit", **SETFIT_CONFIG)
    n = len(data.texts["train"])
    print(f"{stamp()} SetFit {data.name} n={n}: {2 * config.setfit_iterations * n} pairs ...",
          flush=True)
    model, tokenizer, seconds = setfit_train(
        base_encoder_dir(), data.texts["train"], [data.labels[y] for y in data.truth["train"]],
        data.labels, config)
    result = FineTuneResult(model, tokenizer, [], 1, seconds)
    outputs = fine_tune_outputs(result, data, config)

    def one(text: str) -> np.ndarray:
        return forward_logits(model, encode(tokenizer, [text], config.max_length,
                                            config.pooling),
                              tokenizer.pad_token_id, pooling=config.pooling)

    print(f"{stamp()} done SetFit n={n}: {seconds:.0f} s", flush=True)
    return model, outputs, seconds, one


def stacked(first: Outputs, baseline: Outputs, y_val: np.ndarray) -> tuple[Outputs, str]:
    from models.stacking import Stacker

    w = Stacker.fit(first.logits["validation"], baseline.logits["validation"], y_val)
    logits = {n: w.combine(first.logits[n], baseline.logits[n]) for n in EVAL_SPLITS}
    note = (f"w_model {w.w_model:.2f}, w_tfidf {w.w_tfidf:.2f}, "
            f"bias {np.round(w.bias, 2).tolist()}")
    return Outputs(logits, first.embeddings, first.reads), note


# --- scoring --------------------------------------------------------------------------------


def score(data: Data, outputs: Outputs, temperature: float | None) -> dict:
    """Metrics and the escalation policy's numbers; temperature None: fitted on validation."""
    if temperature is None:
        temperature = fit_temperature(outputs.logits["validation"], data.truth["validation"])
    y = data.truth["test"]
    raw = calibrated_probabilities(outputs.logits["test"], 1.0)
    probs = calibrated_probabilities(outputs.logits["test"], temperature)
    report = classification_report(probs, y, data.labels)
    scores = {n: CaseScores(calibrated_probabilities(outputs.logits[n], temperature),
                            outputs.embeddings[n], *outputs.reads[n]) for n in HELD_OUT}
    with quiet_metrics():
        policy = fit_policy(scores["calibration"], data.truth["calibration"], data.labels,
                            "bench-small-data", created=CREATED)
        evidence = evaluate_policy(policy, scores["test"], y)
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "temperature": float(temperature),
            "ece_before": expected_calibration_error(raw, y),
            "ece_after": expected_calibration_error(probs, y),
            "aurc": evidence["aurc"], "coverage": evidence["coverage"],
            "n_auto": evidence["n_auto"], "n_test": evidence["n_test"],
            "auto_error": evidence["auto_error"],
            "auto_wrong": None if evidence["auto_error"] is None
            else round(evidence["auto_error"] * evidence["n_auto"]),
            "threshold": evidence["threshold"], "reasons": evidence["escalation_reasons"],
            "guarantee": evidence["guarantee"]}


def row(data: Data, size: str, candidate: str, numbers: dict, training: str,
        p50: float | None, note: str = "") -> dict:
    if "ece_after" in numbers:
        auto_error = ("–" if numbers["auto_error"] is None else
                      f"{numbers['auto_error']:.1%} ({numbers['auto_wrong']})")
        cells = [f"{numbers['accuracy']:.3f}", f"{numbers['macro_f1']:.3f}",
                 f"{numbers['ece_before']:.3f} -> {numbers['ece_after']:.3f}",
                 f"{numbers['aurc']:.3f}",
                 f"{numbers['coverage']:.1%} ({numbers['n_auto']}/{numbers['n_test']})",
                 auto_error]
    else:  # a prior run that recorded accuracy and macro-F1 only
        cells = [f"{numbers['accuracy']:.3f}", f"{numbers['macro_f1']:.3f}", "n/m", "n/m",
                 "n/m", "n/m"]
    return {"cells": [data.name, size, str(len(data.texts["train"])), candidate, *cells,
                      training, "–" if p50 is None else f"{p50:.0f} ms"],
            "numbers": numbers, "note": note}


# --- output ---------------------------------------------------------------------------------


def header_line() -> str:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in
                    Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), cpu)
    try:
        import setfit
        sf = f"setfit {setfit.__version__}"
    except Exception:
        sf = "setfit not installed"
    return (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on a {os.cpu_count()}-core CPU "
            f"({cpu}), torch {torch.__version__} with {torch.get_num_threads()} threads, {sf}; "
            "shared with other work on the machine, so seconds are indicative. The app's "
            f"splits (seed {SEED}); fine-tune: the app's default recipe (`TrainingConfig`, "
            "max_length 256, mean pooling, up to 6 epochs, early stopping on validation "
            "macro-F1); SetFit: all-MiniLM-L6-v2 body, batch 16, num_iterations 5 "
            "(2 x 5 x n pairs), 1 epoch, max_length 256, class-balanced logistic-regression "
            "head; TF-IDF: the app's baseline (C chosen on validation). ECE (T): top-label "
            "ECE on test before -> after the temperature (fitted on validation). AURC: area "
            "under the risk-coverage curve of the top calibrated probability on test (lower "
            "is better). Coverage / AUTO error: the app's escalation policy fitted on the "
            "calibration split, evaluated on the test split (AUTO errors in brackets). "
            "Training: wall seconds of fitting (ensemble: the sum of its members). p50: one "
            f"test case at a time, median of {P50_CASES}.")


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r["cells"]) + " |" for r in rows]
    return "\n".join(lines)


SECTIONS = (("learning curve", "Learning curve (demo: drug reviews, 3 classes; validation 90, "
             "calibration 188, test 190 unchanged)"),
            ("full", "Demo, full train split (510): fine-tune, ensemble, stacking, SetFit"),
            ("banking77", "banking77 learning curve (77 classes)"))


def write(out: Path, header: str, sections: dict[str, list[dict]], skipped: list[str],
          pending: list[str]) -> str:
    parts = ["# Small data: fine-tune, SetFit, seed ensemble, stacking with TF-IDF", "",
             header, ""]
    for key, title in SECTIONS:
        rows = sections.get(key) or []
        if rows:
            parts += [f"## {title}", "", table(rows), ""]
            notes = [f"- {r['cells'][1]} / {r['cells'][3]}: {r['note']}" for r in rows
                     if r["note"]]
            if notes:
                parts += ["Notes:", "", *notes, ""]
    if skipped:
        parts += ["Not run: " + "; ".join(skipped) + ".", ""]
    if pending:
        parts += ["Did not finish (yet): " + ", ".join(pending) + ".", ""]
    text = "\n".join(parts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    raw = {key: [{"cells": r["cells"], "numbers": r["numbers"], "note": r["note"]}
                 for r in rows] for key, rows in sections.items()}
    out.with_suffix(".json").write_text(json.dumps(
        {"header": header, "sections": raw, "skipped": skipped, "pending": pending},
        indent=1, default=str), encoding="utf-8")
    return text


# --- plan -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.header = header_line()
        self.sections: dict[str, list[dict]] = {}
        self.skipped: list[str] = []
        self.pending: list[str] = []
        self.scratch = Path(HOME.name)

    def add(self, section: str, new: dict) -> None:
        self.sections.setdefault(section, []).append(new)
        text = write(self.args.out, self.header, self.sections, self.skipped, self.pending)
        print(table(self.sections[section]) + "\n", flush=True)
        self.last = text

    def time_left(self, what: str, minutes: float) -> bool:
        """False (and recorded as skipped) when ``what`` would run past --stop-at."""
        if self.args.stop_at is None:
            return True
        left = (self.args.stop_at - datetime.now(UTC)).total_seconds() / 60
        if left >= minutes:
            return True
        self.skipped.append(f"{what} (needs ~{minutes:.0f} min, {max(left, 0):.0f} left "
                            "before the deadline)")
        print(f"{stamp()} skipping {what}: ~{minutes:.0f} min needed, {left:.0f} left",
              flush=True)
        return False

    def done(self, what: str) -> None:
        if what in self.pending:
            self.pending.remove(what)
        self.last = write(self.args.out, self.header, self.sections, self.skipped, self.pending)

    def fine_tune_row(self, section: str, data: Data, size: str):
        result, outputs, seconds, one, extra = run_fine_tune(data, SEED)
        numbers = score(data, outputs, None)
        self.add(section, row(data, size, "fine-tune", numbers, f"{seconds:.0f} s ({extra})",
                              p50_ms(one, data.p50_texts)))
        return result, outputs, seconds, one

    def baseline_row(self, section: str, data: Data, size: str):
        pipeline, outputs, seconds, note = run_baseline(data)
        k = len(data.labels)
        numbers = score(data, outputs, None)
        self.add(section, row(data, size, "TF-IDF + LR", numbers, f"{seconds:.1f} s",
                              p50_ms(lambda t: baseline_probabilities(pipeline, [t], k),
                                     data.p50_texts), note))
        return pipeline, outputs

    def setfit_row(self, section: str, data: Data, size: str) -> None:
        _, outputs, seconds, one = run_setfit(data, self.scratch)
        numbers = score(data, outputs, None)
        self.add(section, row(data, size, "SetFit", numbers, f"{seconds:.0f} s",
                              p50_ms(one, data.p50_texts), "embeddings: SetFit body"))

    def learning_curve(self, section: str, full: Data, sizes: tuple[int, ...],
                       minutes: Callable[[str, int], float]) -> None:
        no_setfit = setfit_available()
        if no_setfit:
            self.skipped.append(f"SetFit on {full.name} (import setfit failed: {no_setfit})")
        for k in sizes:
            data = full.with_train(subsample(full.splits, k, SEED))
            self.baseline_row(section, data, str(k))
            for candidate in ("fine-tune", "SetFit"):
                what = f"{full.name} {k}/class {candidate}"
                if candidate == "SetFit" and no_setfit:
                    continue
                if not self.time_left(what, minutes(candidate, len(data.texts["train"]))):
                    self.done(what)
                    continue
                if candidate == "fine-tune":
                    self.fine_tune_row(section, data, str(k))
                else:
                    self.setfit_row(section, data, str(k))
                self.done(what)

    def full_demo(self, data: Data) -> None:
        section = "full"
        _, base_outputs = self.baseline_row(section, data, "all")
        if not self.time_left("demo full fine-tune + stacking", 6):
            return
        _, first, first_seconds, first_one = self.fine_tune_row(section, data, "all")
        stack, note = stacked(first, base_outputs, data.truth["validation"])
        pipeline_p50 = self.sections[section][0]["cells"][-1]
        self.add(section, row(data, "all", "stacking: fine-tune + TF-IDF",
                              score(data, stack, 1.0), f"{first_seconds:.0f} s + TF-IDF",
                              p50_ms(first_one, data.p50_texts),
                              f"{note}; fitted on validation; temperature 1; p50 without the "
                              f"TF-IDF's ({pipeline_p50})"))
        self.done("demo full stacking")
        self.add(section, row(data, "all", "SetFit (prior run, not rerun)", PRIOR_SETFIT_FULL,
                              f"{PRIOR_SETFIT_FULL['seconds']:.0f} s", None,
                              "measured before this script with the same recipe and splits; "
                              "only accuracy and macro-F1 were recorded (n/m: not measured)"))
        members = [(first, first_seconds, first_one)]
        for seed in ENSEMBLE_SEEDS[1:]:
            if not self.time_left(f"ensemble member seed {seed}", 6):
                return
            _, outputs, seconds, one, _extra = run_fine_tune(data, seed)
            members.append((outputs, seconds, one))
        logits = {n: np.mean([m[0].logits[n] for m in members], axis=0) for n in EVAL_SPLITS}
        ensemble = Outputs(logits, first.embeddings, first.reads)
        seconds = sum(m[1] for m in members)
        member_each = ", ".join(f"{m[1]:.0f}" for m in members)
        self.add(section, row(data, "all", f"ensemble of {len(members)} seeds", score(
            data, ensemble, None), f"{seconds:.0f} s ({member_each})",
            p50_ms(lambda t: [m[2](t) for m in members], data.p50_texts),
            f"seeds {', '.join(map(str, ENSEMBLE_SEEDS))}: mean of the members' logits, "
            "temperature on validation; embeddings of the seed-13 member"))
        stack, note = stacked(ensemble, base_outputs, data.truth["validation"])
        self.add(section, row(data, "all", "stacking: ensemble + TF-IDF",
                              score(data, stack, 1.0), f"{seconds:.0f} s + TF-IDF", None,
                              f"{note}; fitted on validation; temperature 1"))
        self.done("demo ensemble")


def parse_stop(value: str) -> datetime:
    hour, minute = (int(x) for x in value.split(":"))
    now = datetime.now(UTC)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


def estimate(candidate: str, n: int, labels: int) -> float:
    """Minutes, roughly (2-core CPU, demo-length texts): SetFit ~5 s a step of 16 pairs."""
    if candidate == "SetFit":
        return 1.5 + 2 * SETFIT_CONFIG["setfit_iterations"] * n / 16 * 5 / 60
    return 2.0 + n / 510 * 3.0 + labels / 77 * 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop-at", type=parse_stop, help="HH:MM UTC: skip a run that would "
                        "likely end after it")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-banking", action="store_true")
    parser.add_argument("--banking-sizes", type=int, nargs="*", default=list(BANKING_SIZES))
    parser.add_argument("--skip-demo-curve", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    bench = Bench(args)
    print(bench.header + "\n", flush=True)
    sizes = () if args.skip_demo_curve else tuple(args.sizes)
    bench.pending = [f"demo {k}/class {c}" for k in sizes for c in ("fine-tune", "SetFit")]
    if not args.skip_full:
        bench.pending += ["demo full stacking", "demo ensemble"]
    splits, _ = load_splits(DatasetSpec.demo(), SEED)
    demo = Data("demo", splits)
    bench.learning_curve("learning curve", demo, sizes, lambda c, n: estimate(c, n, 3))
    if not args.skip_full:
        bench.full_demo(demo)
    spec = None if args.skip_banking else banking_spec()
    if spec is None and not args.skip_banking:
        bench.skipped.append(f"banking77 (its files are not in {SHARED / 'banking77'})")
    if spec is not None:
        banking_splits, _ = load_splits(spec, SEED)
        bench.learning_curve("banking77", Data("banking77", banking_splits),
                             tuple(args.banking_sizes),
                             lambda c, n: estimate(c, n, 77) * (0.4 if c == "SetFit" else 1))
    bench.pending = []  # whatever did not run is listed as skipped, with why
    print(write(args.out, bench.header, bench.sections, bench.skipped, bench.pending))
    return 0


if __name__ == "__main__":
    sys.exit(main())
