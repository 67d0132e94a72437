"""Train on the demo data (and the shared datasets when present) and print one table per run:
the fine-tuned model beside the TF-IDF baseline on the same test split, calibration, training
time and prediction latency.

    .venv/bin/python benchmarks/bench_classifier.py [--datasets demo banking77 medical] [--epochs N]

Targets (issue 2, 2-core CPU): one case in <= 50 ms p50; training on the demo data <= 5 min.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.classifier import Classifier
from models.registry import ModelRegistry
from models.train_job import DatasetSpec, train_and_save
from models.training import TrainingConfig

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def dataset_specs() -> dict[str, DatasetSpec | None]:
    """Each benchmark dataset, or None when its files are absent (../shared is optional)."""
    banking = SHARED / "banking77"
    medical = SHARED / "medical_abstracts" / "medical_tc_test.csv"
    return {
        "demo": DatasetSpec.demo(),
        "banking77": DatasetSpec("banking77", banking / "train.csv", "text", "category",
                                 test_path=banking / "test.csv")
        if (banking / "train.csv").is_file() else None,
        "medical": DatasetSpec("medical abstracts", medical, "medical_abstract",
                               "condition_label") if medical.is_file() else None,
    }


def latency(classifier: Classifier, texts: list[str]) -> tuple[float, float]:
    """p50 milliseconds for one case at a time, and cases/s in batches of 64."""
    classifier.predict(texts[0])  # warm-up
    singles = []
    for text in texts[:50]:
        start = time.perf_counter()
        classifier.predict(text)
        singles.append((time.perf_counter() - start) * 1000)
    batch = (texts * (64 // len(texts) + 1))[:64]
    start = time.perf_counter()
    classifier.predict_batch(batch, batch_size=64)
    return statistics.median(singles), 64 / (time.perf_counter() - start)


def held_out_texts(path: Path) -> list[str]:
    lines = (path / "splits" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


def per_class_f1(report: dict) -> str:
    f1 = {label: m["f1"] for label, m in report["per_class"].items()}
    if len(f1) <= 5:
        return " ".join(f"{label[:8]}={v:.2f}" for label, v in f1.items())
    values = sorted(f1.values())
    return f"min={values[0]:.2f} median={statistics.median(values):.2f} max={values[-1]:.2f}"


def run(name: str, spec: DatasetSpec, config: TrainingConfig,
        keep: Path | None = None) -> list[list[str]]:
    with tempfile.TemporaryDirectory(prefix=f"casewise-bench-{name}-") as scratch:
        registry = ModelRegistry(keep or Path(scratch))
        start = time.monotonic()
        record = train_and_save(spec, registry, config)
        train_seconds = time.monotonic() - start
        card = json.loads((Path(record.path) / "model_card.json").read_text())
        classifier = Classifier.load(Path(record.path))
        p50, throughput = latency(classifier, held_out_texts(Path(record.path)))
    test, base = card["metrics"]["test"], card["baseline"]["test"]
    rows = card["training_data"]["rows"]
    epochs = f"{card['training']['epochs_run']} (best {card['training']['best_epoch']})"
    return [
        [name, "fine-tuned MiniLM", f"{test['accuracy']:.3f}", f"{test['macro_f1']:.3f}",
         per_class_f1(test), f"{test['ece_before']:.3f} -> {test['ece_after']:.3f}",
         f"{train_seconds:.0f} s, {epochs} ep", f"{p50:.1f} ms", f"{throughput:.0f}/s",
         f"{rows['train']}/{rows['validation']}/{rows['calibration']}/{rows['test']}"],
        [name, "TF-IDF + LR baseline", f"{base['accuracy']:.3f}", f"{base['macro_f1']:.3f}",
         per_class_f1(base), "", "", "", "", ""],
    ]


HEADER = ["data", "model", "accuracy", "macro-F1", "per-class F1", "ECE 15 bins (T)",
          "training", "p50 1 case", "batch 64", "rows tr/val/cal/test"]


def print_table(rows: list[list[str]]) -> None:
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for row in rows:
        print("| " + " | ".join(row) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", nargs="+", default=["demo", "banking77", "medical"])
    parser.add_argument("--epochs", type=int, help="maximum epochs (default: the app's)")
    parser.add_argument("--max-length", type=int, help="model window (default: the app's)")
    parser.add_argument("--keep", type=Path,
                        help="train into this data directory and keep the models there")
    args = parser.parse_args()
    overrides = {k: v for k, v in {"max_epochs": args.epochs,
                                   "max_length": args.max_length}.items() if v}
    config = TrainingConfig(**overrides)
    print(f"torch threads: {__import__('torch').get_num_threads()}, cpus: {os.cpu_count()}; "
          f"config: {config.to_dict()}\n", flush=True)
    rows = []
    for name in args.datasets:
        spec = dataset_specs().get(name)
        if spec is None:
            print(f"skipping {name}: its files are not in {SHARED}", file=sys.stderr)
            continue
        rows += run(name, spec, config, args.keep)
        print_table(rows[-2:])
        print(flush=True)
    print("\nAll runs:\n")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
