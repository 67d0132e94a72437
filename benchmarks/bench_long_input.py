"""Long input, measured: a 100,000-word case (what is read, how long it takes) and the peak
memory of `score` on 200 long abstracts beside 200 short reviews.

    .venv/bin/python benchmarks/bench_long_input.py [--home DIR]

Uses the active model of ``--home`` (default $CASEWISE_HOME); the abstracts come from
../shared/datasets/medical_abstracts (skipped when it is absent). Each `score` runs in its own
process into a scratch history, and its peak RSS is the child's ``ru_maxrss``.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
sys.path.insert(0, str(ROOT))


def huge_case(words: int = 100_000) -> str:
    sentence = "The patient reported nausea and headaches after the second dose of the drug. "
    return (sentence * (words // len(sentence.split()) + 1)).strip()


def one_huge_case(home: Path) -> list[str]:
    from models.classifier import Classifier
    from models.registry import ModelRegistry

    classifier = Classifier.load(ModelRegistry(home).active_path())
    text = huge_case()
    start = time.monotonic()
    prediction = classifier.predict(text)
    seconds = time.monotonic() - start
    return [f"| 100,000-word case | {len(text.split()):,} words, {prediction.n_tokens:,} tokens | "
            f"pooling {classifier.pooling}: {prediction.windows} window(s) read, truncated "
            f"{prediction.truncated} | {seconds:.2f} s |"]


def abstracts(count: int) -> list[str] | None:
    path = SHARED / "medical_abstracts" / "medical_tc_test.csv"
    if not path.exists():
        return None
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    column = next(k for k in rows[0] if "abstract" in k.lower() or "text" in k.lower())
    return [row[column] for row in rows[:count]]


def peak_rss_of_score(home: Path, texts: list[str], name: str) -> str:
    with tempfile.TemporaryDirectory(prefix="casewise-bench-") as scratch:
        data = Path(scratch) / f"{name}.csv"
        with data.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([t] for t in texts)
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "main.py"), "score", str(data),
                        "--text-col", "text", "--no-explain", "--db",
                        str(Path(scratch) / "cases.db")],
                       env={**os.environ, "CASEWISE_HOME": str(home)}, check=True,
                       capture_output=True)
        seconds = time.monotonic() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    words = sum(len(t.split()) for t in texts) / len(texts)
    # ru_maxrss of the children is the largest child so far: the runs go smallest first.
    return (f"| `score --no-explain`, {len(texts)} {name} | {words:,.0f} words on average | "
            f"peak RSS {max(peak, before) / 1024:,.0f} MiB | {seconds:.1f} s |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=os.environ.get("CASEWISE_HOME"))
    args = parser.parse_args()
    if args.home is None:
        print("Give --home DIR (a data directory with an active model) or set CASEWISE_HOME.")
        return 2
    lines = [f"Long input, {date.today()}, 2-core CPU, model of {args.home}", "",
             "| what | size | result | time |", "|---|---|---|---|"]
    lines += one_huge_case(args.home)
    long_texts = abstracts(200)
    if long_texts is None:
        print("../shared/datasets/medical_abstracts is absent: the score rows are skipped.")
    else:
        reviews = [" ".join(t.split()[:40]) for t in long_texts]  # the same words, short
        lines.append(peak_rss_of_score(args.home, reviews, "short texts (40 words)"))
        lines.append(peak_rss_of_score(args.home, long_texts, "abstracts"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
