"""Cold start: the wall time of one `main.py` command in a fresh process, old code beside new.

For each command (`predict`, `explain`, `ask --preview`) and case (a 26-word and a 100-word
review), each tree runs the command in a new Python process, three times (median), the old and
the new tree taking turns so that any load on the machine falls on both. Both trees run with
the same interpreter and virtual environment and the same CASEWISE_HOME (its active model), and
with `--no-store`, so nothing is written to a case history. One untimed run of each tree first
fills the operating system's file cache and writes the bytecode caches (and, for the new code,
its records of verified model digests and of the policy's fit), as on any machine after the
first run. Wall and CPU (user + system) seconds are both given: on a shared machine the wall
time moves with the load (printed), and torch's threads then spin, which ``--threads 1`` avoids.

    .venv/bin/python benchmarks/bench_cold_start.py [--home DIR] [--old DIR | --old-commit C]
        [--repeat 3] [--jit-table] [--skip-cold] [--threads N] [--out FILE]

``--old-commit`` (default 541c644) makes a temporary git worktree of that commit (removed at
the end); ``--old DIR`` uses a tree you made. Without an active model in ``--home`` (default
$CASEWISE_HOME), the demo model is trained there first (`main.py train`, about 5 minutes).
``--jit-table`` adds the attribution alone, in fresh processes, at 10, 26, 100 and 250 words:
with shap's numba-compiled helpers on first use (cold) and on second use (warm), and with the
numpy versions (explainers/jit_free.py) that `explain` uses; and those three helpers alone, as
one attribution calls them.

Target: cold `explain` <= cold `predict` + 1.5 s (new code).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_MARGIN = 1.5

REVIEW = (
    "I was prescribed this for my migraines after two other medicines did nothing, and for the "
    "first week I honestly felt worse: dizzy in the mornings, a dry mouth and a dull headache "
    "that never quite went away. My doctor told me to give it a month, so I kept going. By the "
    "third week the migraines came less often and were much milder, maybe two a month instead "
    "of two a week, and I could work through them. The side effects mostly faded, although I "
    "still get tired in the afternoon and I have gained a few pounds, which I am not happy "
    "about. Sleep is better than it was. I tried to skip a dose once and the headache came "
    "back the next day, so it is clearly doing something. The price is high without insurance "
    "and the pharmacy had trouble getting it twice. Compared with the triptans I used before, "
    "this is a slower and steadier kind of relief rather than a rescue. If you can put up with "
    "the first two weeks, I think it is worth trying, but talk to your doctor about the weight "
    "gain and the tiredness, and do not stop it suddenly. Overall I would give it a cautious "
    "recommendation, seven out of ten, and I plan to stay on it for now while we see whether "
    "the lower dose works just as well for me over the winter months ahead, when my headaches "
    "are usually at their worst and my work is at its busiest."
)


def words(n: int) -> str:
    """The first ``n`` words of the review, as a text ending in a full stop."""
    chosen = REVIEW.split()[:n]
    if len(chosen) < n:
        raise ValueError(f"the review has {len(REVIEW.split())} words, not {n}")
    return " ".join(chosen).rstrip(",.:;") + "."


CASES = {"26 words": words(26), "100 words": words(100)}
COMMANDS = {
    "predict": ["predict", "{text}", "--no-store"],
    "explain": ["explain", "{text}", "--no-store"],
    "ask --preview": ["ask", "{text}", "--preview", "--no-store"],
}


def run_once(tree: Path, argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of ``main.py argv`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(tree / "main.py"), *argv], cwd=tree, env=env,
                            capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{tree}: main.py {argv[0]} failed ({result.returncode}):\n"
                           f"{result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


THREADS: str | None = None  # --threads: OMP/MKL threads for every process measured


def environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEWISE_")}
    if THREADS:
        env.update({"OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS})
    env.update({"CASEWISE_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "TOKENIZERS_PARALLELISM": "false", "PYTHONDONTWRITEBYTECODE": "0"})
    env.update(extra or {})
    return env


def ensure_model(home: Path) -> str:
    active = home / "models" / "active.json"
    if not active.is_file():
        print(f"no active model in {home}: training the demo model there (about 5 minutes)",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "--no-store"],
                       cwd=ROOT, env=environment(home), check=True)
    return json.loads(active.read_text(encoding="utf-8"))["id"]


@contextlib.contextmanager
def old_tree(path: str | None, commit: str) -> Iterator[Path]:
    if path:
        yield Path(path)
        return
    scratch = Path(tempfile.mkdtemp(prefix="casewise-old-")) / commit
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(scratch),
                    commit], check=True)
    try:
        yield scratch
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(scratch)],
                       check=False)
        shutil.rmtree(scratch.parent, ignore_errors=True)


def cold_table(old: Path, new: Path, home: Path, repeat: int) -> tuple[list[str], dict]:
    env = environment(home)
    trees = {"old": old, "new": new}
    for tree in trees.values():  # file cache, bytecode, the new code's digest record
        for argv in COMMANDS.values():
            run_once(tree, [a.format(text=CASES["26 words"]) for a in argv], env)
    times: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for _ in range(repeat):
        for case, text in CASES.items():
            for command, argv in COMMANDS.items():
                for side, tree in trees.items():
                    sample = run_once(tree, [a.format(text=text) for a in argv], env)
                    times.setdefault((command, case, side), []).append(sample)
                    print(f"  {side} {command} ({case}): {sample[0]:.2f} s wall, "
                          f"{sample[1]:.2f} s CPU", file=sys.stderr, flush=True)
    median = {key: (statistics.median(w for w, _ in samples),
                    statistics.median(c for _, c in samples))
              for key, samples in times.items()}
    lines = ["| command | case | old wall s | new wall s | old / new | old CPU s | new CPU s "
             "| new runs (wall s) |", "|---|---|---|---|---|---|---|---|"]
    for command in COMMANDS:
        for case in CASES:
            (ow, oc), (nw, nc) = median[(command, case, "old")], median[(command, case, "new")]
            runs = ", ".join(f"{w:.2f}" for w, _ in times[(command, case, "new")])
            lines.append(f"| {command} | {case} | {ow:.2f} | {nw:.2f} | {ow / nw:.1f}x | "
                         f"{oc:.2f} | {nc:.2f} | {runs} |")
    return lines, median


JIT_PROBE = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from explainers.attribution import explain
from models.classifier import Classifier
from models.registry import ModelRegistry
classifier = Classifier.load(ModelRegistry(Path(os.environ["CASEWISE_HOME"])).active_path())
text = sys.argv[2]
out = []
for _ in range(2):
    start = time.perf_counter()
    attribution = explain(classifier, text)
    out.append(time.perf_counter() - start)
print(json.dumps({"seconds": out, "words": len(attribution.features),
                  "calls": attribution.model_calls}))
"""


# shap's three helpers alone, as one attribution calls them (2 passes: coarse and final; model
# outputs in batches of 64), on the word tree of the text: compiled (first call compiles) or
# the numpy versions.
HELPER_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import shap
from explainers import jit_free
from explainers.attribution import WordMasker, default_budget
text, mode = sys.argv[2], sys.argv[3]
tree = WordMasker("[MASK]", "delete").clustering(text)
n = len(tree) + 1
budget, classes = default_budget(n), 3
rng = np.random.default_rng(0)
if mode == "jit":
    masks = jit_free.compiled("shap.utils._masked_model", "make_masks")
    credit = jit_free.compiled("shap.explainers._partition", "lower_credit")
    build = jit_free.compiled("shap.utils._masked_model", "_build_fixed_output")
else:
    masks, credit = jit_free.members_matrix, jit_free.spread_credit
    build = lambda *args: jit_free.outputs_per_mask(*args[:6])
seconds = []
for _ in range(2):
    start = time.perf_counter()
    for _ in range(2):
        masks(tree)
        credit(2 * n - 2, 0, n, rng.normal(size=(2 * n - 1, classes)), tree)
        for size in [64] * (budget // 64) + [budget % 64 or 64]:
            build(np.zeros((size, classes)), np.zeros((1, classes)), rng.random((size, classes)),
                  np.arange(size + 1), np.ones((size, 1), bool), np.ones(size, int),
                  shap.links.identity, None)
    seconds.append(time.perf_counter() - start)
print(json.dumps({"seconds": seconds, "features": n}))
"""


def probe(script: str, new: Path, home: Path, args: list[str], extra: dict[str, str],
          repeat: int) -> list[dict]:
    samples = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", script, str(new), *args],
                             env=environment(home, extra), capture_output=True, text=True,
                             check=True)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return samples


def jit_table(new: Path, home: Path, repeat: int) -> list[str]:
    """The attribution alone (``explain`` with its checks, model already loaded) and shap's
    compiled helpers alone, with numba (cold: the first call compiles) and without."""
    lines = ["| words (features seen) | model calls | attribution: JIT cold s | JIT warm s "
             "| no JIT cold s | no JIT warm s | helpers only: JIT cold s | JIT warm ms "
             "| numpy ms |", "|---|---|---|---|---|---|---|---|---|"]
    for n in (10, 26, 100, 250):
        text = words(n)
        runs = {mode: probe(JIT_PROBE, new, home, [text], extra, repeat)
                for mode, extra in (("jit", {"CASEWISE_SHAP_JIT": "1"}), ("numpy", {}))}
        helpers = {mode: probe(HELPER_PROBE, new, home, [text, mode], {}, repeat)
                   for mode in ("jit", "numpy")}
        print(f"  {n} words: {runs} {helpers}", file=sys.stderr, flush=True)

        def med(samples: list[dict], i: int) -> float:
            return statistics.median(s["seconds"][i] for s in samples)

        first = runs["numpy"][0]
        lines.append(
            f"| {n} ({first['words']}) | {first['calls']} | {med(runs['jit'], 0):.2f} | "
            f"{med(runs['jit'], 1):.2f} | {med(runs['numpy'], 0):.2f} | "
            f"{med(runs['numpy'], 1):.2f} | {med(helpers['jit'], 0):.2f} | "
            f"{1000 * med(helpers['jit'], 1):.2f} | {1000 * med(helpers['numpy'], 1):.2f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default=os.environ.get("CASEWISE_HOME"),
                        help="data directory with the active model (default: $CASEWISE_HOME)")
    parser.add_argument("--old", help="a source tree of the old code")
    parser.add_argument("--old-commit", default="541c644",
                        help="the commit to compare with (a temporary git worktree)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jit-table", action="store_true",
                        help="also time the attribution alone with and without numba")
    parser.add_argument("--threads", help="OMP_NUM_THREADS for every measured process (default: "
                                          "the library default, as the app runs)")
    parser.add_argument("--skip-cold", action="store_true", help="only the --jit-table")
    parser.add_argument("--out", help="also write the tables to this file")
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    if not args.home:
        parser.error("give --home DIR (or set CASEWISE_HOME) for the model")
    home = Path(args.home)
    model_id = ensure_model(home)
    load = os.getloadavg()
    report = [f"model {model_id}; {os.cpu_count()} CPUs; threads "
              f"{THREADS or 'library default'}; load average at start {load[0]:.1f}; "
              f"median of {args.repeat} fresh processes per cell", ""]
    if not args.skip_cold:
        with old_tree(args.old, args.old_commit) as old:
            lines, median = cold_table(old, ROOT, home, args.repeat)
        report += [*lines, ""]
        for case in CASES:
            predict = median[("predict", case, "new")][0]
            explain = median[("explain", case, "new")][0]
            verdict = "met" if explain <= predict + TARGET_MARGIN else "NOT met"
            report.append(f"target ({case}): cold explain {explain:.2f} s <= cold predict "
                          f"{predict:.2f} s + {TARGET_MARGIN} s: {verdict}")
    if args.jit_table:
        report += ["", "attribution alone (explain() with its checks, model loaded):", ""]
        report += jit_table(ROOT, home, args.repeat)
    report.append(f"\nload average at end {os.getloadavg()[0]:.1f}")
    text = "\n".join(report)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
