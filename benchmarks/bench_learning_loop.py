"""The model learns from its reviewers, and the guarantee is watched (issue 17): a simulation.

    .venv/bin/python benchmarks/bench_learning_loop.py [--data demo banking77] [--weeks N]
        [--streams 20] [--skip-loop] [--monitor-home DIR]

**Learning loop.** A stream of cases goes through the real pipeline into a real SQLite history
(``run_batch``, the path of ``score``), a "week" at a time. Reviewers are simulated from the
true labels: every case in the review queue (escalated, or drawn for the audit sample at the
settings' 5 %) gets a signed review by a real account (accept when the model was right,
override with the true label when not). After each week the CLI's own ``train --from-history
--with-original`` trains a challenger, compares it with the model at work on held-out reviewed
cases and promotes it only by the rule (``models.model_comparison``). Each week, the active
model and its policy answer a fixed test set no model trains or calibrates on: macro-F1,
certified coverage, error among the AUTO cases. The seed model is trained by ``train --data``
on a small seed set (demo: 500 reviews; banking77: 16 queries a class).

**Guarantee monitor.** The last banking77 model of the loop (or the model at work in
``--monitor-home``) decides streams of the banking77 test queries (never trained on) a week of
150 at a time, half of its AUTO decisions drawn for the audit sample (the settings' maximum, so
that a stream of a few thousand cases audits enough of them) and reviewed from the true labels;
the next week's batch reads the monitor (``register_model``) and escalates everything while it
alarms. 20 streams are undrifted (false alarms must be at most δ); in the drifted ones the
labels of some pairs of classes are swapped from week 4 on (a change of labelling policy the
model does not know): how many audited cases after the drift the monitor needs to raise the
alarm. Escalated cases of these streams are not reviewed (the monitor reads only the sample).

Everything runs in temporary folders (CASEWISE_HOME is never the user's). Tables go to stdout
and ``benchmarks/out/learning_loop.md``, the raw numbers to ``learning_loop.json``, the plot to
``docs/benchmarks/learning_loop.png``. Needs ``../shared/datasets`` (banking77); skips it, saying
so, when absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SCRATCH = tempfile.TemporaryDirectory(prefix="casewise-bench-loop-")
os.environ["CASEWISE_HOME"] = SCRATCH.name  # never the user's folders
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sklearn.metrics import f1_score  # noqa: E402

from app.accounts.service import AccountSession, create_user  # noqa: E402
from app.casework import load_workbench  # noqa: E402
from app.cli import main as cli  # noqa: E402
from app.pipeline import Steps, decide, run_batch, watch_guarantee  # noqa: E402
from app.store import open_store  # noqa: E402
from models import data as data_io  # noqa: E402
from models.guarantee_monitor import lower_bounds  # noqa: E402
from models.types import CaseInput  # noqa: E402

SHARED = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "benchmarks" / "out"
PLOT = ROOT / "docs" / "benchmarks" / "learning_loop.png"
PASSWORD = "simulated reviewers only"  # accounts of a throwaway history
SEED = 13
WEEK = {"demo": 120, "banking77": 200}
SEED_SIZE = {"demo": 500, "banking77": 16}  # demo: reviews in all; banking77: per class
# (100, 200 and 300 demo reviews, the first the example, trained models no better than
# always answering "positive" on their own test split — accuracy 0.60 of 30, 0.53 of 45 —
# which `train` refuses to put to work: measured, exit 4; --demo-seed changes it)
AUDIT_SHARE = 0.05  # the settings' default, in the loop
MONITOR_AUDIT_SHARE = 0.5  # the settings' maximum, in the monitor's streams
MONITOR_WEEK = 150
DRIFT_WEEK = 3  # weeks 1-3 as trained, the labels change from week 4


@dataclass
class Pool:
    """A data set cut for the simulation: the seed set, the stream, the fixed test set."""

    name: str
    seed: list[tuple[str, str]]
    stream: list[tuple[str, str]]
    test: list[tuple[str, str]]


@dataclass
class WeekRow:
    data: str
    week: int
    cases: int
    reviewed: int  # signed reviews this week (escalated + audit sample)
    reviewed_total: int
    challenger: str  # "promoted", "kept inactive", or why none was trained
    held_out: int | None
    champion_f1_held_out: float | None
    challenger_f1_held_out: float | None
    training_s: float | None
    active_model: str
    test_macro_f1: float
    test_accuracy: float
    coverage: float
    auto_error: float | None

    def cells(self) -> list[str]:
        def f(x: float | None, fmt: str = "{:.3f}") -> str:
            return "–" if x is None else fmt.format(x)
        held = ("–" if self.held_out is None else
                f"{f(self.champion_f1_held_out)} → {f(self.challenger_f1_held_out)} "
                f"({self.held_out})")
        return [self.data, str(self.week), str(self.cases), f"{self.reviewed} "
                f"({self.reviewed_total})", held, self.challenger, f(self.training_s, "{:.0f} s"),
                self.active_model[-8:], f(self.test_accuracy), f(self.test_macro_f1),
                f(self.coverage, "{:.1%}"), f(self.auto_error, "{:.1%}")]


LOOP_HEADER = ["data", "week", "cases", "reviewed (total)", "held-out macro-F1 champion → "
               "challenger (n)", "challenger", "training", "active", "test accuracy",
               "test macro-F1", "coverage (AUTO)", "AUTO error"]


@dataclass
class StreamRow:
    kind: str  # "undrifted" | "drifted"
    stream: int
    cases: int
    audited: int
    audited_after_drift: int | None
    alarm_at: int | None  # audited cases when the bound first passed α
    alarm_after_drift: int | None  # of those, audited after the drift began
    escalated_by_alarm: int  # cases escalated in the weeks after the alarm
    bounds: list[float] = field(default_factory=list)


# -- data --------------------------------------------------------------------------------------

def demo_pool() -> Pool:
    """500 reviews to start from, at least 8 of each class (a random 100 held 4 "neutral",
    too few for the training's four splits), the rest of the training file as the stream."""
    (train, _), (test, _) = data_io.load_demo()
    rows = list(zip(train.texts, train.labels, strict=True))
    random.Random(SEED).shuffle(rows)
    first = {i for label in sorted(set(train.labels))
             for i in [j for j, r in enumerate(rows) if r[1] == label][:8]}
    first |= set([i for i in range(len(rows)) if i not in first][:SEED_SIZE["demo"] - len(first)])
    return Pool("demo", [rows[i] for i in sorted(first)],
                [r for i, r in enumerate(rows) if i not in first],
                list(zip(test.texts, test.labels, strict=True)))


def banking_rows(name: str) -> list[tuple[str, str]]:
    with (SHARED / "banking77" / name).open(encoding="utf-8") as f:
        return [(r["text"], r["category"]) for r in csv.DictReader(f)]


def banking_pool() -> Pool:
    train = banking_rows("train.csv")
    random.Random(SEED).shuffle(train)
    per_class: dict[str, int] = {}
    seed, stream = [], []
    for text, label in train:
        if per_class.get(label, 0) < SEED_SIZE["banking77"]:
            per_class[label] = per_class.get(label, 0) + 1
            seed.append((text, label))
        else:
            stream.append((text, label))
    return Pool("banking77", seed, stream, banking_rows("test.csv"))


def write_rows(path: Path, rows: Sequence[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


# -- the history and its people ----------------------------------------------------------------

def make_accounts(store, password_file: Path):
    """An admin (the first user) and a reviewer who signs with meaning "approved"."""
    session = AccountSession(store)
    create_user(session, "admin", "Ada Admin", "admin", PASSWORD)
    session.sign_in("admin", PASSWORD)
    create_user(session, "rita", "Rita Reviewer", "approver", PASSWORD)
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    password_file.chmod(0o600)
    return AccountSession(store).unlock(PASSWORD, "rita")


def review_queue(store, signer, truth: dict[str, str], audit_only: bool = False) -> int:
    """Sign a review of every case waiting for one: accept when the model was right, override
    with the true label when not."""
    done = 0
    while True:
        page = store.find_cases(needs_review=None if audit_only else True,
                                audit_sample=True if audit_only else None,
                                reviewed=False, page_size=500)
        if not page.items:
            return done
        for item in page.items:
            label = truth[item.source]
            if item.label == label:
                store.add_review(item.id, signer, "accept", meaning="approved")
            else:
                store.add_review(item.id, signer, "override", label=label,
                                 reason="simulated reviewer: the true label",
                                 meaning="approved")
            done += 1


def admin_args(password_file: Path) -> list[str]:
    return ["--user", "admin", "--password-file", str(password_file)]


# -- the learning loop -------------------------------------------------------------------------

def evaluate(bench, test: Sequence[tuple[str, str]]) -> tuple[str, float, float, float,
                                                               float | None]:
    texts = [t for t, _ in test]
    truth = [lab for _, lab in test]
    answers = decide(bench, texts)
    labels = [p.label for p, _ in answers]
    auto = [i for i, (_, d) in enumerate(answers) if d.auto]
    wrong = sum(labels[i] != truth[i] for i in auto)
    return (bench.model_id, f1_score(truth, labels, average="macro", zero_division=0),
            sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth),
            len(auto) / len(truth), wrong / len(auto) if auto else None)


def latest_comparison(store) -> dict | None:
    events = store.audit_events(kind="models_compared", limit=10_000)
    return events[-1].payload if events else None


def run_loop(pool: Pool, weeks: int, root: Path, log) -> list[WeekRow]:
    home = root / pool.name
    home.mkdir(parents=True)
    os.environ["CASEWISE_HOME"] = str(home)
    password_file = home / "password.txt"
    with open_store(home / "casewise.db") as store:
        signer = make_accounts(store, password_file)
    seed_file = write_rows(home / "seed.csv", pool.seed)
    start = time.perf_counter()
    code = cli(["train", "--data", str(seed_file), *admin_args(password_file)])
    seed_seconds = time.perf_counter() - start
    if code not in (0, 3):
        raise SystemExit(f"seed training failed (exit {code})")
    bench = load_workbench(home)  # the model at work, reloaded only after a training
    rows = [WeekRow(pool.name, 0, len(pool.seed), 0, 0, "seed model", None, None, None,
                    seed_seconds, *evaluate(bench, pool.test))]
    log(rows[-1])
    truth: dict[str, str] = {}
    reviewed_total = 0
    size = WEEK[pool.name]
    for week in range(1, weeks + 1):
        chunk = pool.stream[(week - 1) * size:week * size]
        if not chunk:
            break
        cases = [CaseInput(text, f"{pool.name}:{week}:{i}") for i, (text, _) in enumerate(chunk)]
        truth.update({c.source: label for c, (_, label) in zip(cases, chunk, strict=True)})
        with open_store(home / "casewise.db") as store:
            run_batch(bench, cases, store,
                      steps=Steps(explain=False, audit_share=AUDIT_SHARE))
            reviewed = review_queue(store, signer, truth)
            before = latest_comparison(store)
        reviewed_total += reviewed
        start = time.perf_counter()
        code = cli(["train", "--from-history", "--with-original", *admin_args(password_file)])
        seconds = time.perf_counter() - start
        with open_store(home / "casewise.db") as store:
            after = latest_comparison(store)
        if after is None or after == before:
            verdict, held, f1s = f"none trained (exit {code})", None, (None, None)
            seconds = None
        else:
            c = after["comparison"]
            verdict = "promoted" if c["promote"] else "kept inactive"
            held, f1s = c["n"], (c["champion_macro_f1"], c["challenger_macro_f1"])
        bench = load_workbench(home)
        rows.append(WeekRow(pool.name, week, len(chunk), reviewed, reviewed_total, verdict,
                            held, *f1s, seconds, *evaluate(bench, pool.test)))
        log(rows[-1])
    return rows


# -- the guarantee monitor ---------------------------------------------------------------------

def swapped_classes(labels: Sequence[str], pairs: int, seed: int) -> dict[str, str]:
    chosen = random.Random(seed).sample(sorted(set(labels)), 2 * pairs)
    swap = {}
    for a, b in zip(chosen[::2], chosen[1::2], strict=True):
        swap[a], swap[b] = b, a
    return swap


def run_stream(bench, rows: Sequence[tuple[str, str]], kind: str, index: int,
               root: Path, weeks: int, swap_pairs: int) -> StreamRow:
    """One stream into a history of its own; ``bench`` (the model at work, loaded once for
    all streams) reads each stream's monitor as its batches register it."""
    order = random.Random(1000 + index).sample(range(len(rows)), len(rows))
    stream = [rows[i] for i in order][:weeks * MONITOR_WEEK]
    swap = swapped_classes([lab for _, lab in rows], swap_pairs, 2000 + index) \
        if kind == "drifted" else {}
    folder = root / f"{kind}-{index}"
    folder.mkdir()
    truth: dict[str, str] = {}
    audited_at_drift, escalated_by_alarm = None, 0
    with open_store(folder / "casewise.db") as store:
        signer = make_accounts(store, folder / "password.txt")
        for week in range(weeks):
            chunk = stream[week * MONITOR_WEEK:(week + 1) * MONITOR_WEEK]
            if not chunk:
                break
            drifted = bool(swap) and week >= DRIFT_WEEK
            if drifted and audited_at_drift is None:
                audited_at_drift = len(store.audited_decisions(bench.policy.policy_id))
            cases = [CaseInput(t, f"{kind}{index}:{week}:{i}") for i, (t, _) in enumerate(chunk)]
            truth.update({c.source: (swap.get(lab, lab) if drifted else lab)
                          for c, (_, lab) in zip(cases, chunk, strict=True)})
            counts = run_batch(bench, cases, store,
                               steps=Steps(explain=False, audit_share=MONITOR_AUDIT_SHARE))
            if bench.guarantee is not None and bench.guarantee.alarm:
                escalated_by_alarm += counts.escalated
            review_queue(store, signer, truth, audit_only=True)
        watch = watch_guarantee(store, bench, record=False)
        wrong = [d.wrong for d in store.audited_decisions(bench.policy.policy_id)]
    after = None if audited_at_drift is None else watch.n - audited_at_drift
    alarm_after = (None if watch.alarm_at is None or audited_at_drift is None
                   else watch.alarm_at - audited_at_drift)
    return StreamRow(kind, index, len(stream), watch.n, after, watch.alarm_at, alarm_after,
                     escalated_by_alarm, [float(b) for b in lower_bounds(wrong, watch.delta)])


def monitor_model(home: Path) -> dict:
    """The model the streams use and what its policy certified."""
    bench = load_workbench(home)
    policy = bench.policy
    if policy is None or policy.threshold is None:
        raise SystemExit(f"model {bench.model_id}'s policy certifies nothing: no AUTO cases "
                         "to watch")
    return {"model": bench.model_id, "alpha": policy.settings.alpha,
            "delta": policy.settings.delta, "threshold": float(policy.threshold)}


def run_monitor(home: Path, streams: int, drifted: int, weeks: int, swap_pairs: int,
                root: Path, log) -> None:
    rows = banking_rows("test.csv")
    bench = load_workbench(home)
    for kind, count in (("undrifted", streams), ("drifted", drifted)):
        for i in range(count):
            log(run_stream(bench, rows, kind, i, root, weeks, swap_pairs))


# -- reports -----------------------------------------------------------------------------------

def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def monitor_summary(rows: Sequence[StreamRow], about: dict) -> str:
    undrifted = [r for r in rows if r.kind == "undrifted"]
    drifted = [r for r in rows if r.kind == "drifted"]
    lines = [f"model {about['model']}, α = {about['alpha']}, δ = {about['delta']}, "
             f"threshold {about['threshold']:.3f}"]
    if undrifted:
        false = sum(r.alarm_at is not None for r in undrifted)
        lines.append(f"undrifted: {false} false alarm(s) in {len(undrifted)} streams "
                     f"({false / len(undrifted):.0%}; at most δ = {about['delta']:.0%} "
                     f"allowed); audited AUTO cases a stream: median "
                     f"{statistics.median(r.audited for r in undrifted):.0f}")
    if drifted:
        raised = [r.alarm_after_drift for r in drifted if r.alarm_after_drift is not None]
        lines.append(f"drifted: alarm in {len(raised)} of {len(drifted)} streams"
                     + (f"; audited cases after the drift until the alarm: median "
                        f"{statistics.median(raised):.0f}, min {min(raised)}, max {max(raised)}"
                        if raised else ""))
    header = ["stream", "cases", "audited AUTO", "audited after drift", "alarm at (audited)",
              "alarm after drift", "escalated by the alarm"]
    body = [[f"{r.kind} {r.stream}", str(r.cases), str(r.audited),
             "–" if r.audited_after_drift is None else str(r.audited_after_drift),
             "–" if r.alarm_at is None else str(r.alarm_at),
             "–" if r.alarm_after_drift is None else str(r.alarm_after_drift),
             str(r.escalated_by_alarm)] for r in rows]
    return "\n".join(lines) + "\n\n" + table(header, body)


def plot(loop: Sequence[WeekRow], monitor: Sequence[StreamRow], about: dict | None) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    left = axes[0]
    for name in dict.fromkeys(r.data for r in loop):
        weeks = [r for r in loop if r.data == name]
        x = [r.week for r in weeks]
        line, = left.plot(x, [r.test_macro_f1 for r in weeks], marker="o",
                          label=f"{name}: test macro-F1")
        left.plot(x, [r.coverage for r in weeks], marker="s", linestyle="--",
                  color=line.get_color(), label=f"{name}: coverage (AUTO)")
        for r in weeks:
            if r.challenger == "promoted":
                left.annotate("↑", (r.week, r.test_macro_f1), ha="center", va="bottom")
    left.set_xticks(sorted({r.week for r in loop}))
    left.set_xlabel("week (0 = seed model; ↑ = challenger promoted)")
    left.set_ylim(0, 1)
    left.set_title("Learning from reviews")
    left.legend(fontsize=8)
    right = axes[1]
    for r in monitor:
        color = "tab:red" if r.kind == "drifted" else "tab:gray"
        right.plot(range(1, len(r.bounds) + 1), r.bounds, color=color, alpha=0.6, linewidth=1)
    if about:
        right.axhline(about["alpha"], color="black", linestyle=":", label=f"α = {about['alpha']}")
    right.plot([], [], color="tab:red", label="drifted streams")
    right.plot([], [], color="tab:gray", label="undrifted streams")
    right.set_xlabel("audited AUTO cases")
    right.set_ylabel("lower confidence bound of the AUTO error")
    right.set_title("Guarantee monitor (banking77)")
    right.legend(fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)


def challengers(home: Path, pool: Pool) -> str:
    """Every challenger the loop trained, on the fixed test set, promoted or not: what the
    gate took and what it left (read afterwards from a ``--work-dir`` home)."""
    from app.casework import model_registry

    os.environ["CASEWISE_HOME"] = str(home)
    registry = model_registry(home)
    with open_store(home / "casewise.db") as store:
        compared = {e.payload["challenger"]: e.payload["comparison"]
                    for e in store.audit_events(kind="models_compared", limit=10_000)}
    texts, truth = [t for t, _ in pool.test], [lab for _, lab in pool.test]
    rows = []
    for week, (model_id, c) in enumerate(compared.items(), start=1):
        labels = [p.label for p in registry.classifier(model_id).predict_batch(texts)]
        f1 = f1_score(truth, labels, average="macro", zero_division=0)
        low, high = c["macro_f1_difference"][1:]
        rows.append([str(week), model_id[-8:], f"{c['n']}",
                     f"{c['challenger_macro_f1'] - c['champion_macro_f1']:+.3f} "
                     f"[{low:+.3f}, {high:+.3f}]", "promoted" if c["promote"] else "kept",
                     f"{f1:.3f}"])
    return table(["training", "challenger", "held-out n", "macro-F1 difference [95 % CI]",
                  "gate", "test macro-F1"], rows)


def combine(files: Sequence[Path]) -> int:
    """One table and one plot from several runs (say, the demo's loop in one, banking77's
    loop and the monitor in another)."""
    reports = [json.loads(Path(f).read_text()) for f in files]
    loop = [WeekRow(**r) for report in reports for r in report["loop"]]
    monitor = [StreamRow(**r) for report in reports for r in report["monitor"]]
    about = next((r["monitor_model"] for r in reports if r["monitor_model"]), None)
    text = table(LOOP_HEADER, [r.cells() for r in loop])
    if monitor:
        text += "\n\n" + monitor_summary(monitor, about)
    (OUT / "learning_loop_combined.md").write_text(text + "\n")
    plot(loop, monitor, about)
    print(text)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=["demo", "banking77"],
                        choices=["demo", "banking77"])
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--demo-seed", type=int, default=SEED_SIZE["demo"],
                        help="demo reviews the seed model is trained on")
    parser.add_argument("--streams", type=int, default=20, help="undrifted streams")
    parser.add_argument("--drifted", type=int, default=10, help="drifted streams")
    parser.add_argument("--monitor-weeks", type=int, default=12)
    parser.add_argument("--swap-pairs", type=int, default=10)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--monitor-home", type=Path,
                        help="a CASEWISE_HOME whose active model the monitor streams use")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                        help="only write the tables and the plot of earlier runs' "
                             "learning_loop.json files (copies), together")
    parser.add_argument("--out-stem", default="learning_loop",
                        help="names of the table and JSON files in benchmarks/out")
    parser.add_argument("--challengers", type=Path, metavar="WORK_DIR",
                        help="only score every challenger an earlier --work-dir run trained "
                             "on the fixed test set (with --data: which data set)")
    parser.add_argument("--work-dir", type=Path,
                        help="keep the simulated folders here (default: a temporary folder, "
                             "removed at the end)")
    args = parser.parse_args()
    if args.combine:
        return combine(args.combine)
    if args.challengers:
        for name in args.data:
            pool = {"demo": demo_pool, "banking77": banking_pool}[name]()
            print(f"{name}\n\n" + challengers(args.challengers / name, pool) + "\n")
        return 0
    SEED_SIZE["demo"] = args.demo_seed
    if not (SHARED / "banking77").is_dir():
        print(f"skipped: {SHARED} is absent (banking77 is needed)")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(SCRATCH.name)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=False)
        root = args.work_dir
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "loop": [],
              "monitor": [], "monitor_model": None}

    def save() -> None:
        (OUT / f"{args.out_stem}.json").write_text(json.dumps(report, indent=1))
        loop = [WeekRow(**r) for r in report["loop"]]
        monitor = [StreamRow(**r) for r in report["monitor"]]
        text = table(LOOP_HEADER, [r.cells() for r in loop])
        if monitor:
            text += "\n\n" + monitor_summary(monitor, report["monitor_model"])
        (OUT / f"{args.out_stem}.md").write_text(text + "\n")

    def log_week(row: WeekRow) -> None:
        report["loop"].append(asdict(row))
        print(" | ".join(row.cells()), flush=True)
        save()

    def log_stream(row: StreamRow) -> None:
        report["monitor"].append(asdict(row))
        print(f"{row.kind} {row.stream}: audited {row.audited}, alarm at {row.alarm_at}, "
              f"after drift {row.alarm_after_drift}", flush=True)
        save()

    pools = {"demo": demo_pool, "banking77": banking_pool}
    if not args.skip_loop:
        for name in args.data:
            run_loop(pools[name](), args.weeks, root, log_week)
    home = args.monitor_home or (root / "banking77")
    if args.streams or args.drifted:
        if args.monitor_home:  # the streams' own folders, never the given one's history
            copy = root / "monitor-home"
            shutil.copytree(args.monitor_home, copy, ignore=shutil.ignore_patterns("*.db*"))
            home = copy
        os.environ["CASEWISE_HOME"] = str(home)
        report["monitor_model"] = monitor_model(home)
        run_monitor(home, args.streams, args.drifted, args.monitor_weeks, args.swap_pairs,
                    root, log_stream)
    save()
    plot([WeekRow(**r) for r in report["loop"]], [StreamRow(**r) for r in report["monitor"]],
         report["monitor_model"])
    print((OUT / f"{args.out_stem}.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
