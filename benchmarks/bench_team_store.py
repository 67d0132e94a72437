"""SQLite and PostgreSQL side by side at 100,000 cases: copy, pages, search, verify, writers.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_team_store.py [--cases N]
        [--sqlite PATH] [--pg-url postgresql+psycopg://user:pw@host:port/postgres]
        [--runs 20] [--write-seconds 20] [--out benchmarks/out/team_store.md]

1. Fills an SQLite history with ``bench_store``'s synthetic cases (or reuses ``--sqlite PATH``
   when it already holds them), then ``db copy`` (``copy_history``) copies it into a fresh
   database on a throwaway PostgreSQL cluster (``tests/helpers/postgres.start_cluster``; or on
   ``--pg-url``, a server where the user may CREATE DATABASE): time and rows/s.
2. ANALYZE on the copy, then ``bench_store``'s page and search queries on both databases
   (median and p95 of ``--runs`` runs after one warm-up; targets page <= 50 ms, search
   <= 200 ms).
3. ``verify_chain()`` on both.
4. 1, 2 and 4 writer processes (spawned), each filing single cases with their prediction and
   escalation (``add_case``, one transaction each, as the window does) for ``--write-seconds``
   on a fresh small database of each kind; then the count and the chain are checked.

Prints the tables and writes them to ``--out``. Use ``--cases 2000`` for a quick check.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_store  # noqa: E402  (the synthetic history, its queries and timing)
from sqlalchemy import create_engine  # noqa: E402

from app.store import CaseRepository, StoreError, open_store  # noqa: E402
from app.store.copy import copy_history  # noqa: E402
from models.progress import Progress  # noqa: E402
from tests.helpers.postgres import Cluster, _external, _remove, start_cluster  # noqa: E402

WRITERS = (1, 2, 4)
WRITE_BUSY_TIMEOUT = 60.0  # seconds: writers queue for the lock instead of failing


@dataclass
class WriteResult:
    database: str
    writers: int
    written: int
    seconds: float
    failed: int
    count: int
    chain: str


# -- 1. the copy -----------------------------------------------------------------------------

def copy_into(source: Path, target: str) -> list[tuple[str, str]]:
    """``db copy`` source -> target, timed as a whole and by stage; the table's rows."""
    stages: dict[str, float] = {}

    def progress(step: Progress) -> None:
        stages.setdefault(step.stage, time.perf_counter())

    began = time.perf_counter()
    report = copy_history(source, target, progress=progress)
    seconds = time.perf_counter() - began
    marks = [*sorted(stages.items(), key=lambda item: item[1]), ("end", began + seconds)]
    rows = [("db copy, whole (verify source, copy rows, verify copy, commit)",
             f"{seconds:,.1f} s, {report.rows:,} rows, {report.rows / seconds:,.0f} rows/s")]
    rows += [(f"  of which: {stage}", f"{after - at:,.1f} s")
             for (stage, at), (_next, after) in itertools.pairwise(marks)]
    return rows


def analyze(url: str) -> tuple[float, str, int]:
    """ANALYZE the database; its seconds, the server version and the database size."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            began = time.perf_counter()
            connection.exec_driver_sql("ANALYZE")
            seconds = time.perf_counter() - began
            version = connection.exec_driver_sql("SHOW server_version").scalar_one()
            size = connection.exec_driver_sql(
                "SELECT pg_database_size(current_database())").scalar_one()
    finally:
        engine.dispose()
    return seconds, str(version), int(size)


# -- 2. the queries --------------------------------------------------------------------------

def query_rows(sqlite: CaseRepository, postgres: CaseRepository, words: bench_store.Words,
               runs: int) -> list[str]:
    queries = ([(name, query, bench_store.PAGE_TARGET_MS)
                for name, query in bench_store.page_queries()]
               + [(name, query, bench_store.SEARCH_TARGET_MS)
                  for name, query in bench_store.search_queries(words)])
    lines = []
    for name, query, target in queries:
        cells = []
        for store in (sqlite, postgres):
            hits = store.find_cases(page_size=1, **query).total
            row = bench_store.timing_row(name, lambda s=store, q=query:
                                         s.find_cases(page_size=100, **q), runs, target)
            cells.append((hits, row))
            print(f"  {store.location[:20]}: {name}: {row.value} / {row.p95}", file=sys.stderr)
        (h1, r1), (h2, r2) = cells
        hits = f"{h1:,}" if h1 == h2 else f"{h1:,} / {h2:,}"
        lines.append(f"| {name} | {hits} | {r1.value} | {r1.p95} | {r2.value} | {r2.p95} "
                     f"| {r1.target} | {r1.met} / {r2.met} |")
    return lines


# -- 3. verify -------------------------------------------------------------------------------

def verify(store: CaseRepository, words: bench_store.Words) -> str:
    row = bench_store.measure_verify(bench_store.Bench(store, Path(), 1, words))[0]
    return f"{row.value} ({row.name.removeprefix('verify_chain ')[1:-1]})"


# -- 4. concurrent writers -------------------------------------------------------------------

def writer_process(target: str, serial: int, seconds: float, barrier: Any,
                   results: Any) -> None:
    """Files single cases (case + prediction + escalation, one transaction) for ``seconds``;
    puts (written, seconds, failed) on ``results``."""
    words = bench_store.Words(random.Random(0))
    rng = random.Random(serial)
    store = open_store(target, actor=f"writer-{serial}", busy_timeout=WRITE_BUSY_TIMEOUT,
                       daily_backup=False)
    written = failed = 0
    try:
        barrier.wait()
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            case = bench_store.new_cases(rng, words, serial + written + failed, 1,
                                         bench_store.MODELS[0])[0]
            try:
                store.add_case(case.text, case.source, case.metadata,
                               prediction=case.prediction, escalation=case.escalation)
                written += 1
            except StoreError:
                failed += 1
        results.put((written, time.perf_counter() - began, failed))
    finally:
        store.close()


def write_throughput(database: str, target: str, writers: int,
                     seconds: float) -> WriteResult:
    open_store(target, actor="bench", daily_backup=False).close()  # created and migrated
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(writers + 1), context.Queue()
    processes = [context.Process(target=writer_process,
                                 args=(target, (n + 1) * 10_000_000, seconds, barrier, results))
                 for n in range(writers)]
    for process in processes:
        process.start()
    barrier.wait(timeout=300)
    outcomes = [results.get(timeout=seconds + 600) for _ in processes]
    for process in processes:
        process.join()
    written = sum(o[0] for o in outcomes)
    with open_store(target, actor="bench", daily_backup=False) as store:
        count = store.find_cases(page_size=1).total
        checked = store.verify_chain()
    chain = f"ok ({checked.events:,} events)" if checked.ok else f"BROKEN: {checked.reason}"
    return WriteResult(database, writers, written, max(o[1] for o in outcomes),
                       sum(o[2] for o in outcomes), count, chain)


# -- the report ------------------------------------------------------------------------------

def machine() -> str:
    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--sqlite", type=Path, help="the SQLite history to fill or reuse "
                        "(default: a temporary file, removed afterwards)")
    parser.add_argument("--pg-url", help="a PostgreSQL server where the user may CREATE "
                        "DATABASE (default: a throwaway local cluster)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per query (>= 20)")
    parser.add_argument("--write-seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/out/team_store.md")
    args = parser.parse_args()
    load = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="casewise-team-"))
    path = args.sqlite or folder / "casewise.db"
    words = bench_store.Words(random.Random(0))
    cluster: Cluster | None = None
    try:
        fill_seconds = bench_store.prepare(path, args.cases, words)
        open_store(path, actor="bench").close()  # the day's backup, so the copy does not time it
        cluster = _external(args.pg_url) if args.pg_url else start_cluster()
        url = cluster.url(cluster.create_database())
        print("db copy ...", file=sys.stderr)
        setup = copy_into(path, url)
        analyze_seconds, pg_version, pg_size = analyze(url)
        sqlite_size = path.stat().st_size
        with open_store(path, actor="bench", daily_backup=False) as sqlite, \
                open_store(url, actor="bench") as postgres:
            print("queries ...", file=sys.stderr)
            queries = query_rows(sqlite, postgres, words, args.runs)
            print("verify ...", file=sys.stderr)
            verified = (verify(sqlite, words), verify(postgres, words))
        writes = []
        for writers in WRITERS:
            for database in ("SQLite", "PostgreSQL"):
                target = (str(folder / f"writers-{writers}.db") if database == "SQLite"
                          else cluster.url(cluster.create_database()))
                print(f"{writers} writer(s) on {database} ...", file=sys.stderr)
                writes.append(write_throughput(database, target, writers, args.write_seconds))
    finally:
        if cluster is not None and cluster.folder is not None:
            _remove(cluster)  # stops the throwaway server and removes its folder
        shutil.rmtree(folder, ignore_errors=True)

    header = (
        f"Team store benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {args.cases:,} cases "
        f"(bench_store's synthetic history). Machine: {machine()}; SQLite "
        f"{sqlite3.sqlite_version}, PostgreSQL {pg_version} (psycopg 3, "
        + ("the server at --pg-url" if args.pg_url else
           "a throwaway local cluster over loopback TCP, started with the test helper's "
           "fsync=off, synchronous_commit=off, full_page_writes=off")
        + f"). The CPU was shared with another benchmark running at the same time (load "
        f"average {load[0]:.1f} at the start), so timings are pessimistic and noisy. "
        f"PostgreSQL was ANALYZEd after the copy, before any timing. Queries: median and p95 "
        f"of {args.runs} runs after one warm-up, page_size=100; 'met?' compares the p95 with "
        "the target (SQLite / PostgreSQL).")
    fill_note = (f"{fill_seconds:,.1f} s (add_cases + 20 % reviews)" if fill_seconds is not None
                 else "reused")
    setup_table = ["| step | SQLite | PostgreSQL |", "|---|---|---|",
                   f"| fill {args.cases:,} cases | {fill_note} | (copied) |"]
    setup_table += [f"| {name} | | {value} |" for name, value in setup]
    setup_table += [f"| ANALYZE | | {analyze_seconds:,.1f} s |",
                    f"| database size | {sqlite_size / 2**20:,.0f} MiB | "
                    f"{pg_size / 2**20:,.0f} MiB |",
                    f"| verify_chain() | {verified[0]} | {verified[1]} |"]
    query_table = ["| query | hits | SQLite median | SQLite p95 | PostgreSQL median "
                   "| PostgreSQL p95 | target | met? |", "|---|---:|---:|---:|---:|---:|---|---|",
                   *queries]
    write_table = [f"Writers: each process files single cases (add_case with prediction and "
                   f"escalation, one transaction each) for {args.write_seconds:.0f} s on a "
                   "fresh database; busy timeout 60 s.", "",
                   "| database | writer processes | cases written | cases/s (total) | failed "
                   "| cases in the database | chain |", "|---|---:|---:|---:|---:|---:|---|"]
    write_table += [f"| {w.database} | {w.writers} | {w.written:,} | "
                    f"{w.written / w.seconds:,.0f} | {w.failed} | {w.count:,} "
                    f"({'= written' if w.count == w.written else 'WRONG'}) | {w.chain} |"
                    for w in writes]
    report = "\n\n".join([header, "\n".join(setup_table), "\n".join(query_table),
                          "\n".join(write_table)]) + "\n"
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
