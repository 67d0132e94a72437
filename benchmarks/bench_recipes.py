"""Every training recipe beside today's default, on the whole training split of each data set
(issue 16): accuracy, macro-F1, ECE, AURC, certified coverage and AUTO error on test with its
interval, 20 re-splits of calibration + test, training time, prediction and attribution p50.

    .venv/bin/python benchmarks/bench_recipes.py [--datasets medical banking77 demo]
        [--recipes fine-tune ensemble setfit] [--stop-at HH:MM]

Each recipe is trained through the app's own job (``train_and_save``, what ``main.py train
--recipe R`` runs) into a temporary CASEWISE_HOME, read back as the app reads a model
(``Classifier.load``), and measured there:

- accuracy, macro-F1, ECE before -> after the temperature, training seconds: the model card;
- coverage, AUTO error [95 % interval], AURC: the saved policy (fitted on the calibration
  split) judged on the test split, as the card records it;
- re-splits: calibration + test pooled and cut in random halves 20 times, the policy fitted on
  one half and judged on the other (``bench_escalation.resplits``): in how many the AUTO
  error exceeded alpha (the guarantee allows about delta = 10 % of them);
- prediction p50: ``Classifier.predict`` on 30 test cases one at a time;
- attribution p50: ``explainers.attribution.explain`` (the app's defaults: partition, word
  level, the faithfulness checks) on 8 test cases one at a time.

Stacking is the app's recipe ``stacked`` (``models.stacking``: the fine-tune's logits and the
TF-IDF baseline's log-probabilities weighted by NLL on the validation split, saved with the
model); ``auto`` is the app's default (the recipe by data size, stacked when out-of-fold
validation macro-F1 says it wins). Both reuse the fine-tune's trained weights (below), so their
training seconds are the fine-tune's; the TF-IDF fit adds seconds (the baseline row's).

The seed ensemble's first member, the stacked model's encoder and the automatic recipe's are the
fine-tune of the same seed on the same data; the training is deterministic (seeded), so this
script reuses the fine-tune's trained weights instead of training them again, and counts its
seconds in theirs.

Tables go to stdout and benchmarks/out/recipes.md (rewritten after every row), the numbers to
benchmarks/out/recipes.json. A data set whose files are absent from ../shared is skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")
HOME = tempfile.TemporaryDirectory(prefix="casewise-bench-recipes-")
os.environ["CASEWISE_HOME"] = HOME.name  # never the user's folders
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import numpy as np  # noqa: E402
from bench_classifier import dataset_specs  # noqa: E402
from bench_escalation import held_out_scores, resplits  # noqa: E402
from bench_small_data import (  # noqa: E402
    Data,
    header_line,
    p50_ms,
    run_baseline,
    stamp,
)

import models.training  # noqa: E402
from explainers.attribution import explain  # noqa: E402
from models.calibration import calibrated_probabilities  # noqa: E402
from models.classifier import CaseScores, Classifier  # noqa: E402
from models.escalation import EscalationSettings  # noqa: E402
from models.model_card import training_sentence  # noqa: E402
from models.recipes import AUTO, ENSEMBLE, FINE_TUNE, SETFIT, STACKED  # noqa: E402
from models.registry import ModelRegistry  # noqa: E402
from models.train_job import load_splits, quiet_metrics, train_and_save  # noqa: E402
from models.training import TrainingConfig  # noqa: E402

OUT = HERE / "out" / "recipes.md"
SEED = 13
# bench_classifier's and bench_long_texts' medical rows used 3 epochs (a quarter of an hour a
# training); the others the app's default (up to 6, early stopping on validation macro-F1).
EPOCHS = {"medical": 3}
PREDICT_CASES, EXPLAIN_CASES = 30, 8
CREATED = "2026-01-01T00:00:00+00:00"  # policies fitted here are never saved
HEADER = ["data", "candidate", "accuracy", "macro-F1", "ECE (T)", "AURC", "coverage (AUTO)",
          "AUTO error [95 % CI]", "re-splits: AUTO error > α", "training", "p50 predict",
          "p50 explain"]


# --- the ensemble's first member is the fine-tune -------------------------------------------


def _reusing_fine_tunes(original):
    """``fine_tune`` remembered by (training texts, labels, settings but the recipe): the
    ensemble's seed-13 member is then the fine-tune already trained, not a second copy."""
    trained: dict[tuple, object] = {}

    def fine_tune(base_dir, splits, labels, config, progress=None, cancel=None):
        settings = json.dumps(dataclasses.replace(config, recipe=FINE_TUNE).to_dict(),
                              sort_keys=True)
        key = (str(base_dir), hash(tuple(splits.train.texts)),
               hash(tuple(splits.train.labels)), tuple(labels), settings)
        if key not in trained:
            trained[key] = original(base_dir, splits, labels, config, progress, cancel)
        else:
            print(f"{stamp()}   member seed {config.seed}: the fine-tune already trained",
                  flush=True)
        return trained[key]

    return fine_tune


models.training.fine_tune = _reusing_fine_tunes(models.training.fine_tune)


# --- measuring ------------------------------------------------------------------------------


def resplit_count(model: object, cal: tuple, test: tuple) -> dict:
    runs = resplits(model, cal, test, EscalationSettings())["certified policy"]
    alpha = EscalationSettings().alpha
    errors = [r["auto_error"] for r in runs if r["auto_error"] is not None]
    return {"over_alpha": sum(e > alpha for e in errors), "n": len(runs),
            "mean_coverage": float(np.mean([r["coverage"] for r in runs])),
            "mean_auto_error": float(np.mean(errors)) if errors else None}


def trained_row(name: str, candidate: str, registry: ModelRegistry, model_id: str,
                wall: float, sample: list[str]) -> tuple[dict, Classifier]:
    classifier = registry.classifier(model_id)
    card = json.loads((classifier.path / "model_card.json").read_text(encoding="utf-8"))
    held = held_out_scores(classifier)
    test = card["metrics"]["test"]
    training = card["training"]
    numbers = {
        "accuracy": test["accuracy"], "macro_f1": test["macro_f1"],
        "ece_before": test["ece_before"], "ece_after": test["ece_after"],
        **{k: card["escalation"][k] for k in ("aurc", "coverage", "n_auto", "n_test",
                                              "auto_error", "auto_error_ci", "threshold")},
        "resplits": resplit_count(classifier, held["calibration"], held["test"]),
        "training_seconds": training["seconds"], "job_seconds": wall,
        "epochs": f"{training['epochs_run']} (best {training['best_epoch']})",
        "recipe": training["recipe"], "recipe_reason": training["recipe_reason"],
        "stacking": training.get("stacking"),
        "note": training_sentence(training) if training.get("stacking") else None,
        "p50_predict_ms": p50_ms(classifier.predict, sample[:PREDICT_CASES]),
    }
    print(f"{stamp()}   explaining {EXPLAIN_CASES} cases ...", flush=True)
    numbers["p50_explain_ms"] = p50_ms(lambda t: explain(classifier, t),
                                       sample[:EXPLAIN_CASES])
    return {"data": name, "candidate": candidate, "numbers": numbers}, classifier


def baseline_row(name: str, data: Data) -> dict:
    from bench_small_data import score

    _, outputs, seconds, note = run_baseline(data)
    with quiet_metrics():
        numbers = score(data, outputs, None)
    scores = {n: CaseScores(calibrated_probabilities(outputs.logits[n], numbers["temperature"]),
                            outputs.embeddings[n], *outputs.reads[n][:2])
              for n in ("calibration", "test")}
    numbers.update(training_seconds=seconds, note=note, p50_explain_ms=None,
                   p50_predict_ms=None, auto_error_ci=None, resplits=resplit_count(
                       SimpleNamespace(labels=data.labels, model_id="bench-recipes-tfidf"),
                       (scores["calibration"], data.truth["calibration"]),
                       (scores["test"], data.truth["test"])))
    return {"data": name, "candidate": "TF-IDF + LR", "numbers": numbers}


# --- output ---------------------------------------------------------------------------------


def fmt(value, pattern: str = "{:.3f}") -> str:
    return "–" if value is None else pattern.format(value)


def cells(row: dict) -> list[str]:
    n = row["numbers"]
    ci = n.get("auto_error_ci")
    error = "–" if n["auto_error"] is None else (
        f"{n['auto_error']:.1%} ({round(n['auto_error'] * n['n_auto'])})"
        + (f" [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else ""))
    r = n["resplits"]
    training = f"{n['training_seconds']:.0f} s" + (f", {n['epochs']} ep"
                                                  if n.get("epochs") else "")
    return [row["data"], row["candidate"], fmt(n["accuracy"]), fmt(n["macro_f1"]),
            f"{fmt(n['ece_before'])} → {fmt(n['ece_after'])}", fmt(n["aurc"]),
            f"{n['coverage']:.1%} ({n['n_auto']}/{n['n_test']})", error,
            f"{r['over_alpha']}/{r['n']} (mean cov. {r['mean_coverage']:.1%})", training,
            fmt(n["p50_predict_ms"], "{:.0f} ms"), fmt(n["p50_explain_ms"], "{:.0f} ms")]


def write(out: Path, header: str, rows: list[dict], skipped: list[str]) -> str:
    lines = ["# Training recipes on the whole training split", "", header, "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    notes = [f"- {r['data']} / {r['candidate']}: {r['numbers']['note']}" for r in rows
             if r["numbers"].get("note")]
    notes += [f"- {r['data']} / {r['candidate']}: recipe {r['numbers']['recipe']} "
              f"({r['numbers']['recipe_reason']})" for r in rows if r["numbers"].get("recipe")]
    lines += ["", "Notes:", "", *notes]
    if skipped:
        lines += ["", "Not run: " + "; ".join(skipped) + "."]
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps({"header": header, "rows": rows,
                                                    "skipped": skipped}, indent=1,
                                                   default=str), encoding="utf-8")
    return text


# --- plan -----------------------------------------------------------------------------------

CANDIDATES = {FINE_TUNE: "fine-tune (the previous default)",
              STACKED: "stacked: fine-tune + TF-IDF", AUTO: "auto (the new default)",
              ENSEMBLE: "ensemble of 3 seeds", SETFIT: "SetFit"}


def parse_stop(value: str) -> datetime:
    hour, minute = (int(x) for x in value.split(":"))
    return datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)


def run_dataset(name: str, spec, recipes: list[str], args, rows: list, skipped: list,
                header: str) -> None:
    splits, _ = load_splits(spec, SEED)
    data = Data(name, splits)
    sample = random.Random(SEED).sample(data.texts["test"], PREDICT_CASES)
    rows.append(baseline_row(name, data))
    print(write(args.out, header, rows, skipped), flush=True)
    registry = ModelRegistry(Path(HOME.name) / name)
    for recipe in recipes:
        if args.stop_at and datetime.now(UTC) >= args.stop_at:
            skipped.append(f"{name} {recipe} (past --stop-at)")
            continue
        overrides = {k: v for k, v in {"max_epochs": EPOCHS.get(name),
                                       "max_steps": args.max_steps}.items() if v}
        config = TrainingConfig(seed=SEED, recipe=recipe, **overrides)
        print(f"{stamp()} {name}: training {recipe} ...", flush=True)
        start = time.monotonic()
        record = train_and_save(spec, registry, config, activate=False)
        wall = time.monotonic() - start
        print(f"{stamp()} {name}: {recipe} trained in {wall:.0f} s; measuring ...", flush=True)
        row, _ = trained_row(name, CANDIDATES[recipe], registry, record.id, wall,
                                      sample)
        rows.append(row)
        print(write(args.out, header, rows, skipped), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["medical", "banking77", "demo"])
    parser.add_argument("--recipes", nargs="+",
                        default=[FINE_TUNE, STACKED, AUTO, ENSEMBLE, SETFIT],
                        choices=list(CANDIDATES))
    parser.add_argument("--stop-at", type=parse_stop, help="HH:MM UTC: start no training after")
    parser.add_argument("--max-steps", type=int, help="stop each training after this many "
                        "optimiser steps (a quick check of the script, not a measurement)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    specs = dataset_specs()
    header = header_line().split(" The app's splits")[0] + (
        " Medical trained with 3 epochs (as in the classifier table), the others with the "
        "app's defaults. α = δ = 0.10.")
    rows: list[dict] = []
    skipped: list[str] = []
    for name in args.datasets:
        if specs.get(name) is None:
            skipped.append(f"{name} (its files are not in ../shared/datasets)")
            continue
        run_dataset(name, specs[name], args.recipes, args, rows, skipped, header)
    print(write(args.out, header, rows, skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
