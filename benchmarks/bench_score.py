"""Batch scoring, old path against the pipeline, with the time spent in the store apart.

Scores the first N held-out cases kept with the active model (test split, then calibration)
into a fresh SQLite history, with and without attributions, once with the code of an older
commit (a git worktree: its ``app.batch.score_cases``) and once with this tree
(``app.pipeline.run_batch``), each in its own process. Time is split into the store (every
``CaseRepository`` method, outermost call only), prediction (``Classifier.scores``),
attribution (``explainers.attribution.explain``) and the rest. Target: the store's share at
least 5x smaller than the old path's.

    git worktree add /tmp/casewise-old 541c644
    CASEWISE_HOME=/path/with/a/model .venv/bin/python benchmarks/bench_score.py \\
        --old /tmp/casewise-old [--cases 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run_side(root: Path, n_cases: int, explain: bool) -> dict:
    """In this process: score with the code under ``root``; the timings as a dict."""
    sys.path.insert(0, str(root))
    os.chdir(root)
    from app.casework import load_workbench
    from app.paths import data_dir
    from app.store import CaseRepository, open_store
    from models.classifier import Classifier
    from models.train_job import read_held_out
    from models.types import CaseInput

    timers = {"store": 0.0, "predict": 0.0, "explain": 0.0}
    depth = {"store": 0, "predict": 0, "explain": 0}

    def timed(kind: str, function):
        def wrapper(*args, **kwargs):
            depth[kind] += 1
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                depth[kind] -= 1
                if depth[kind] == 0:
                    timers[kind] += time.perf_counter() - start
        return wrapper

    for name, member in list(vars(CaseRepository).items()):
        if callable(member) and not name.startswith("_") and name != "close":
            setattr(CaseRepository, name, timed("store", member))
    Classifier.scores = timed("predict", Classifier.scores)
    import explainers.attribution as attribution

    attribution.explain = timed("explain", attribution.explain)
    bench = load_workbench(data_dir())
    # The demo's held-out cases: the test split (190), then the calibration split.
    texts = read_held_out(bench.model_dir, "test")[0] + \
        read_held_out(bench.model_dir, "calibration")[0]
    cases = [CaseInput(text, f"held-out:{i}") for i, text in enumerate(texts[:n_cases], start=1)]
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.db", actor="bench")
        start = time.perf_counter()
        counts = _score(store, bench, cases, explain)
        total = time.perf_counter() - start
        store.close()
    return {"cases": len(cases), "total": total, **timers, "counts": counts}


def _score(store, bench, cases, explain: bool) -> dict:
    try:
        from app.pipeline import Steps, run_batch
    except ImportError:  # the old path
        from app.batch import score_cases

        return score_cases(store, bench, cases, explain=explain).to_dict()
    return run_batch(bench, cases, store, steps=Steps(explain=explain)).to_dict()


def measure(root: Path, n_cases: int, explain: bool) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--side", str(root),
               "--cases", str(n_cases)] + (["--explain"] if explain else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(root)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[str, str, dict]]) -> str:
    lines = ["| path | attributions | cases | total s | store s | store share | "
             "predict s | explain s | cases/s |", "| --- | --- | ---: | ---: | ---: | ---: | "
             "---: | ---: | ---: |"]
    for path, explain, r in rows:
        lines.append(f"| {path} | {explain} | {r['cases']} | {r['total']:.2f} | "
                     f"{r['store']:.2f} | {r['store'] / r['total']:.1%} | {r['predict']:.2f} | "
                     f"{r['explain']:.2f} | {r['cases'] / r['total']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="a worktree of the commit to compare with")
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--side", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        print(json.dumps(run_side(args.side, args.cases, args.explain)))
        return
    rows = []
    for explain in (False, True):
        for name, root in (("old", args.old), ("pipeline", HERE)):
            if root is None:
                continue
            rows.append((name, "yes" if explain else "no", measure(root, args.cases, explain)))
    print(table(rows))
    for explain in ("no", "yes"):
        found = {name: r for name, e, r in rows if e == explain}
        if {"old", "pipeline"} <= set(found):
            old, new = found["old"], found["pipeline"]
            share_old, share_new = (r["store"] / r["total"] for r in (old, new))
            print(f"attributions {explain}: the store's share {share_old:.1%} -> "
                  f"{share_new:.1%} ({share_old / share_new:.1f}x smaller; target 5x), "
                  f"its time {old['store']:.2f} s -> {new['store']:.2f} s")


if __name__ == "__main__":
    main()
