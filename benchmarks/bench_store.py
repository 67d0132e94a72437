"""The case history at 100,000 cases: the case list, search, opening, verifying, filling.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_store.py [--db PATH] [--cases N]

Fills a temporary store (or ``--db PATH``, reused when it already holds the cases) with
synthetic cases: 20-150 words each from a Zipf-distributed word list plus recurring terms,
5 labels, about 30 % escalated, about 20 % reviewed (accept / override / defer by 3
reviewers), 2 model ids, created times spread over a year. Then times each operation
(median and p95 of ``--runs`` runs, after one warm-up) and prints one table with the
targets of the issue: a page of 100 in <= 50 ms, a full-text search in <= 200 ms.

Each row comes from a measurement function ``(Bench) -> list[Row]`` listed in
``MEASUREMENTS``; to time something new (an export, say), write one and add it there.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.accounts.service import AccountSession, UserSigner, create_user
from app.store import CaseRepository, NewCase, backup_store, list_backups, open_store
from app.store.engine import make_engine
from app.store.file_state import forget_clean_close
from app.store.migrate import downgrade, upgrade
from models.types import EscalationDecision, Prediction

PAGE_TARGET_MS = 50.0
SEARCH_TARGET_MS = 200.0
LABELS = ("negative", "neutral", "positive", "adverse_event", "off_topic")
MODELS = ("minilm-2026-01", "minilm-2026-06")
REVIEWERS = ("ann.lee", "bob.moss", "chidi.okafor")  # logins: reviews are signed by accounts
PASSWORD = "bench password, not a secret"
RECURRING = ("dose", "rash", "refund", "account", "nausea", "insurance", "tablet", "claim")
PHRASE = "side effects"
RARE_TERM = "pemphigus"  # in about 1 case in 5,000
FILL_CHUNK = 500  # cases per add_cases call; each call is one transaction and one time stamp


@dataclass
class Row:
    name: str
    value: str  # the median, or a rate
    p95: str = ""
    target: str = ""
    met: str = ""


@dataclass
class Bench:
    """What every measurement gets: the filled store, its file, how many runs to time."""

    store: CaseRepository
    path: Path
    runs: int
    words: Words
    fill_seconds: float | None = None  # when this run filled the store


# -- synthetic cases -------------------------------------------------------------------------

class Words:
    """A deterministic vocabulary of pronounceable words, drawn Zipf-like (a few words are
    in most cases, most words in a few), as in real text."""

    SYLLABLES: ClassVar[list[str]] = [c + v for c in "bdfgklmnprstvz"
                                      for v in ("a", "e", "i", "o", "u", "ai", "ou")]

    def __init__(self, rng: random.Random, size: int = 6000) -> None:
        seen: set[str] = set()
        while len(seen) < size:
            seen.add("".join(rng.choice(self.SYLLABLES) for _ in range(rng.randint(2, 4))))
        self.vocabulary = sorted(seen)
        rng.shuffle(self.vocabulary)
        self.weights = [1.0 / (rank + 1) for rank in range(size)]

    def common(self) -> str:
        return self.vocabulary[0]  # the most frequent word: in most cases

    def text(self, rng: random.Random, serial: int) -> str:
        words = rng.choices(self.vocabulary, self.weights, k=rng.randint(20, 150))
        for term in RECURRING:
            if rng.random() < 0.15:
                words.insert(rng.randrange(len(words) + 1), term)
        if rng.random() < 0.05:
            words.insert(rng.randrange(len(words) + 1), PHRASE)
        if rng.random() < 0.0002:
            words.insert(rng.randrange(len(words) + 1), RARE_TERM)
        return f"Case {serial}: " + " ".join(words) + "."


def prediction(rng: random.Random, model_id: str) -> Prediction:
    weights = [rng.random() ** 3 for _ in LABELS]
    total = sum(weights)
    probabilities = {label: w / total for label, w in zip(LABELS, weights, strict=True)}
    ranked = sorted(probabilities.values(), reverse=True)
    label = max(probabilities, key=probabilities.__getitem__)
    return Prediction(label=label, probabilities=probabilities, margin=ranked[0] - ranked[1],
                      model_id=model_id, truncated=False, n_tokens=rng.randint(30, 190),
                      prediction_set=(label,))


def escalation(rng: random.Random, escalate: bool, predicted: Prediction) -> EscalationDecision:
    return EscalationDecision(
        decision="escalate" if escalate else "auto",
        reasons=("confidence below the certified threshold",) if escalate else (),
        reason_codes=("low_confidence",) if escalate else (), label=predicted.label,
        confidence=predicted.confidence, threshold=0.62, alpha=0.1, delta=0.1,
        prediction_set=predicted.prediction_set or (predicted.label,), set_score="lac",
        ood_score=rng.random(), ood_threshold=0.9, n_calibration=400, calibrated_on="split",
        policy_id="policy-1", guarantee="error among AUTO cases <= 10% with probability >= 90%")


def new_cases(rng: random.Random, words: Words, start: int, count: int,
              model_id: str) -> list[NewCase]:
    cases = []
    for serial in range(start, start + count):
        predicted = prediction(rng, model_id)
        cases.append(NewCase(words.text(rng, serial), "bench.csv", {"row": serial},
                             predicted, escalation(rng, rng.random() < 0.3, predicted)))
    return cases


@contextmanager
def clock_at(store: CaseRepository, moment: datetime) -> Iterator[None]:
    """Stamp the writes inside with ``moment`` (a history laid down over a year)."""
    previous, store.clock = store.clock, lambda: moment
    try:
        yield
    finally:
        store.clock = previous


def reviewer_signers(store: CaseRepository) -> dict[str, UserSigner]:
    """An admin (the first user must be one) and the ``REVIEWERS``' accounts, unlocked."""
    session = AccountSession(store)
    create_user(session, "admin", "Bench Admin", "admin", PASSWORD)
    session.sign_in("admin", PASSWORD)
    for login in REVIEWERS:
        create_user(session, login, login.replace(".", " ").title(), "reviewer", PASSWORD)
    return {login: AccountSession(store).unlock(PASSWORD, login) for login in REVIEWERS}


def review_some(store: CaseRepository, rng: random.Random, added: list[int],
                cases: list[NewCase], signers: dict[str, UserSigner]) -> None:
    for case_id, case in zip(added, cases, strict=True):
        if rng.random() >= 0.2:
            continue
        reviewer, roll = signers[rng.choice(REVIEWERS)], rng.random()
        if roll < 0.6:
            store.add_review(case_id, reviewer, "accept")
        elif roll < 0.85:
            other = rng.choice([x for x in LABELS if x != case.prediction.label])
            store.add_review(case_id, reviewer, "override", other, "the text says otherwise")
        else:
            store.add_review(case_id, reviewer, "defer", reason="needs a colleague")


def fill(store: CaseRepository, words: Words, total: int, seed: int = 1) -> float:
    """Add ``total`` cases over a year ending now, in chunks; returns the seconds taken."""
    rng = random.Random(seed)
    chunks = max(1, total // FILL_CHUNK)
    start_time = datetime.now(UTC) - timedelta(days=365)
    with clock_at(store, start_time):
        signers = reviewer_signers(store)
    began = time.perf_counter()
    for chunk in range(chunks):
        count = FILL_CHUNK if chunk < chunks - 1 else total - FILL_CHUNK * (chunks - 1)
        moment = start_time + timedelta(days=365 * chunk / chunks, minutes=rng.randint(0, 600))
        model_id = MODELS[0] if chunk < chunks * 0.6 else MODELS[1]  # retrained mid-year
        cases = new_cases(rng, words, chunk * FILL_CHUNK + 1, count, model_id)
        with clock_at(store, moment):
            added = [a.id for a in store.add_cases(cases)]
        with clock_at(store, moment + timedelta(hours=2)):
            review_some(store, rng, added, cases, signers)
        if chunk % 20 == 19:
            print(f"  filled {(chunk + 1) * FILL_CHUNK} cases, "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
    return time.perf_counter() - began


# -- timing ------------------------------------------------------------------------------------

def timed(function: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median and p95 in milliseconds of ``runs`` calls, after one warm-up call."""
    function()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), p95(samples)


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timing_row(name: str, function: Callable[[], Any], runs: int,
               target_ms: float | None = None) -> Row:
    median, p95 = timed(function, runs)
    if target_ms is None:
        return Row(name, ms(median), ms(p95))
    return Row(name, ms(median), ms(p95), f"<= {target_ms:.0f} ms",
               "yes" if p95 <= target_ms else "NO")


def ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


def date_range(days_from: int, days_to: int) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {"date_from": (today - timedelta(days=days_from)).isoformat(),
            "date_to": (today - timedelta(days=days_to)).isoformat()}


def page_queries() -> list[tuple[str, dict[str, Any]]]:
    month = date_range(200, 170)
    return [
        ("page 1, no filter (newest first)", {}),
        ("page 500, no filter", {"page": 500}),
        ("filter label", {"label": "adverse_event"}),
        ("filter decision=override", {"decision": "override"}),
        ("filter escalated=True", {"escalated": True}),
        ("filter escalated=False", {"escalated": False}),
        ("filter reviewed=True", {"reviewed": True}),
        ("filter reviewed=False", {"reviewed": False}),
        ("filter reviewer", {"reviewer": REVIEWERS[1]}),
        ("filter model_id", {"model_id": MODELS[0]}),
        ("filter date range (a month)", month),
        ("label + escalated + reviewed=False", {"label": "negative", "escalated": True,
                                                "reviewed": False}),
        ("sort created (oldest first)", {"sort": "created"}),
        ("sort -created, page 200", {"sort": "-created", "page": 200}),
        ("sort confidence", {"sort": "confidence"}),
        ("sort -confidence, filter escalated", {"sort": "-confidence", "escalated": True}),
        ("sort label", {"sort": "label"}),
    ]


def search_queries(words: Words) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"search common word ({words.common()})", {"search": words.common()}),
        ("search common word, by relevance", {"search": words.common(), "sort": "relevance"}),
        (f"search recurring term ({RECURRING[1]})", {"search": RECURRING[1]}),
        (f"search rare word ({RARE_TERM})", {"search": RARE_TERM}),
        (f'search phrase ("{PHRASE}")', {"search": f'"{PHRASE}"'}),
        ("search prefix (dos*)", {"search": "dos*"}),
        ("search + filter (escalated, label)", {"search": RECURRING[1], "escalated": True,
                                                "label": "negative"}),
        ("search common + reviewed=False", {"search": words.common(), "reviewed": False}),
    ]


def measure_pages(bench: Bench) -> list[Row]:
    return [timing_row(f"find_cases: {name}",
                       lambda q=query: bench.store.find_cases(page_size=100, **q),
                       bench.runs, PAGE_TARGET_MS) for name, query in page_queries()]


def measure_search(bench: Bench) -> list[Row]:
    rows = []
    for name, query in search_queries(bench.words):
        total = bench.store.find_cases(page_size=1, **query).total
        rows.append(timing_row(f"find_cases: {name} [{total:,} hits]",
                               lambda q=query: bench.store.find_cases(page_size=100, **q),
                               bench.runs, SEARCH_TARGET_MS))
    return rows


def measure_get_case(bench: Bench) -> list[Row]:
    rng = random.Random(7)
    last = bench.store.find_cases(page_size=1).items[0].id
    return [timing_row("get_case (random id)",
                       lambda: bench.store.get_case(rng.randint(1, last)), bench.runs)]


def measure_open(bench: Bench) -> list[Row]:
    """Opening as Casewise left the file (schema check), and after a crash or an outside
    change (every page checked); neither takes the daily backup, timed on its own below.
    The bench's own store is closed meanwhile: an open one would make every start look like
    a start beside another process (which gets the full check)."""
    def reopen(full_check: bool) -> None:
        if full_check:
            forget_clean_close(bench.path)
        open_store(bench.path, daily_backup=False).close()
    runs = max(5, bench.runs // 2)
    bench.store.close()
    try:
        return [timing_row("open_store + close, file as Casewise left it",
                           lambda: reopen(False), runs),
                timing_row("open_store + close, full check (after a crash or outside change)",
                           lambda: reopen(True), runs)]
    finally:
        bench.store = open_store(bench.path, actor="bench", daily_backup=False)


def measure_backup(bench: Bench) -> list[Row]:
    """The daily backup (copy, check of every page of the copy, fsync), once per day."""
    return [timing_row("backup_store (the first open of a day does one)",
                       lambda: backup_store(bench.path), 3)]


def measure_migration(bench: Bench) -> list[Row]:
    """Revision 0003 (the case list table, filled from the records) on a copy taken back to
    0002: the one-off cost of the upgrade for an existing history."""
    folder = Path(tempfile.mkdtemp(prefix="casewise-migrate-"))
    try:
        copy = folder / "casewise.db"
        backup_store(bench.path)  # a consistent copy of the open store, via the backup API
        shutil.copy(list_backups(bench.path)[0], copy)
        engine = make_engine(f"sqlite:///{copy}")
        try:
            downgrade(engine, "0002")
            began = time.perf_counter()
            upgrade(engine)
            seconds = time.perf_counter() - began
        finally:
            engine.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [Row("migration 0002 -> 0003 (builds the case list table)", ms(seconds * 1000))]


def measure_verify(bench: Bench) -> list[Row]:
    began = time.perf_counter()
    result = bench.store.verify_chain()
    seconds = time.perf_counter() - began
    status = "ok" if result.ok else f"BROKEN: {result.reason}"
    return [Row(f"verify_chain ({result.events:,} events, {status})", ms(seconds * 1000))]


def measure_fill_rates(bench: Bench) -> list[Row]:
    """Rates on a fresh store beside the big one, so the big one is not changed."""
    rows = []
    if bench.fill_seconds is not None:
        total = bench.store.find_cases(page_size=1).total
        rows.append(Row(f"fill {total:,} cases (add_cases + 20 % reviews)",
                        ms(bench.fill_seconds * 1000)))
    folder = Path(tempfile.mkdtemp(prefix="casewise-rate-"))
    try:
        with open_store(folder / "rate.db", actor="bench") as store:
            rng = random.Random(3)
            batches = [new_cases(rng, bench.words, n * 1000 + 1, 1000, MODELS[0])
                       for n in range(10)]
            began = time.perf_counter()
            for cases in batches:
                store.add_cases(cases)
            rows.append(Row("add_cases rate (10 x 1000 cases)",
                            f"{10_000 / (time.perf_counter() - began):,.0f} cases/s"))
            singles = new_cases(rng, bench.words, 20_001, 300, MODELS[0])
            began = time.perf_counter()
            for case in singles:
                store.add_case(case.text, case.source, case.metadata,
                               prediction=case.prediction, escalation=case.escalation)
            rows.append(Row("add_case rate (300 cases, one transaction each)",
                            f"{300 / (time.perf_counter() - began):,.0f} cases/s"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def measure_file(bench: Bench) -> list[Row]:
    size = bench.path.stat().st_size
    return [Row("database file size", f"{size / 2**20:,.0f} MiB")]


# Each returns its rows; add a function here to add rows to the table.
# The reference, timed in the same run on the same file: what the list would cost without
# the case_latest table (the latest prediction found per case with a correlated subquery) and
# search without FTS5 (LIKE scans every text). Same page size, same count of matches.
LATEST_LABEL = ("(SELECT p.label FROM predictions p WHERE p.case_id = c.id "
                "ORDER BY p.id DESC LIMIT 1)")
REFERENCE_QUERIES = [
    ("page 1, no filter", f"SELECT c.id, {LATEST_LABEL} FROM cases c "
                          "ORDER BY c.created DESC LIMIT 100", "SELECT count(*) FROM cases"),
    ("filter label", f"SELECT c.id FROM cases c WHERE {LATEST_LABEL} = :label "
                     "ORDER BY c.created DESC LIMIT 100",
     f"SELECT count(*) FROM cases c WHERE {LATEST_LABEL} = :label"),
]


def _like(word: str) -> tuple[str, str]:
    return (f"SELECT id FROM cases WHERE text LIKE '%{word}%' ORDER BY created DESC LIMIT 100",
            f"SELECT count(*) FROM cases WHERE text LIKE '%{word}%'")


def measure_reference(bench: Bench) -> list[Row]:
    """The plain way, for the side-by-side comparison (no targets: it is the reference)."""
    queries = [(f"reference: {name} (no case_latest)", page, count)
               for name, page, count in REFERENCE_QUERIES]
    for name, word in (("common word", bench.words.common()), ("recurring term", RECURRING[1]),
                       ("rare word", RARE_TERM)):
        queries.append((f"reference: search {name} with LIKE (no FTS5)", *_like(word)))
    connection = sqlite3.connect(bench.path)
    try:
        def run(page: str, count: str) -> None:
            connection.execute(page, {"label": "negative"}).fetchall()
            connection.execute(count, {"label": "negative"}).fetchone()

        return [timing_row(name, lambda p=page, c=count: run(p, c), max(5, bench.runs // 4))
                for name, page, count in queries]
    finally:
        connection.close()


MEASUREMENTS: list[Callable[[Bench], list[Row]]] = [
    measure_pages, measure_search, measure_reference, measure_get_case, measure_open,
    measure_backup, measure_migration, measure_verify, measure_fill_rates, measure_file,
]


def table(rows: list[Row]) -> str:
    lines = ["| measurement | median | p95 | target | met? |", "|---|---:|---:|---|---|"]
    lines += [f"| {r.name} | {r.value} | {r.p95} | {r.target} | {r.met} |" for r in rows]
    return "\n".join(lines)


def prepare(path: Path, cases: int, words: Words) -> float | None:
    """Fill the store at ``path`` unless it already holds ``cases``; the fill's seconds."""
    with open_store(path, actor="bench") as store:
        have = store.find_cases(page_size=1).total
        if have >= cases:
            return None
        if have:
            raise SystemExit(f"{path} holds {have} cases, fewer than {cases}; "
                             "give another --db or --cases.")
        print(f"filling {path} with {cases:,} cases ...", file=sys.stderr)
        return fill(store, words, cases)


def store_parser(description: str | None) -> argparse.ArgumentParser:
    """The options of every benchmark on the synthetic history: ``--db`` and ``--cases``
    (``prepare`` fills or reuses the store they name)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, help="the store to fill or reuse (default: a "
                                                "temporary file, removed afterwards)")
    parser.add_argument("--cases", type=int, default=100_000)
    return parser


def main() -> int:
    parser = store_parser(__doc__)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (>= 20)")
    args = parser.parse_args()
    folder = None if args.db else Path(tempfile.mkdtemp(prefix="casewise-bench-"))
    path = args.db or folder / "casewise.db"
    try:
        words = Words(random.Random(0))
        fill_seconds = prepare(path, args.cases, words)
        bench = Bench(open_store(path, actor="bench"), path, args.runs, words, fill_seconds)
        try:
            rows = [row for measure in MEASUREMENTS for row in measure(bench)]
        finally:
            bench.store.close()  # (a measurement may have replaced it)
        print(f"Case history benchmark: {args.cases:,} cases, {args.runs} runs per row "
              f"(after one warm-up), page_size=100, SQLite {sqlite3.sqlite_version}, "
              f"{os.cpu_count()} CPUs. 'met?' compares the p95 with the target.\n")
        print(table(rows))
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
