"""Electronic signatures: what signing in, unlocking a key, signing a review and verifying a
signature cost, and ``audit verify`` on a history of 100,000 cases with 20,000 signed reviews.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_signing.py [--cases N] [--reviews M]
        [--runs R]

Everything is the real code on a temporary SQLite store (removed afterwards): accounts made with
``app.accounts.service`` (Argon2id password hashes, Ed25519 keys sealed with an Argon2id key
and AES-256-GCM), checkpoints signed with an installation key, as the app does. The history
is the synthetic one of ``bench_store.py`` (cases with a prediction and an escalation
decision, added with ``add_cases`` in chunks of 500); after each chunk, its share of the
``--reviews`` signed reviews is made by three users whose keys were unlocked once (a review
needs an unlocked key, not a new unlock: unlocking costs two Argon2id runs). Each review is
timed. Then the store is closed (a checkpoint), reopened, and ``verify_chain`` is timed with
a progress callback, per stage. Target: ``audit verify`` in at most 30 s on 2 cores.
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
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_store
from bench_store import Row, ms, table, timing_row

from app.accounts.installation import installation_key
from app.accounts.keys import open_private_key, public_hex, signature_valid
from app.accounts.passwords import PARAMETERS, password_matches
from app.accounts.service import AccountSession, UserSigner, authenticate, create_user
from app.accounts.statements import ReviewContent, review_statement
from app.store import CaseRepository, open_store
from models.progress import Progress

VERIFY_TARGET_SECONDS = 30.0
PASSWORD = "correct horse battery staple"
USERS = {"ann": "Ann Lee", "bob": "Bob Moss", "chidi": "Chidi Okafor"}


def make_users(store: CaseRepository) -> dict[str, UserSigner]:
    """An admin, then three approvers; each approver's key unlocked once."""
    admin = AccountSession(store)
    create_user(admin, "admin", "Ada Admin", "admin", PASSWORD)
    admin.sign_in("admin", PASSWORD)
    for login, name in USERS.items():
        create_user(admin, login, name, "approver", PASSWORD)
    return {login: AccountSession(store).unlock(PASSWORD, login) for login in USERS}


# -- the small operations -------------------------------------------------------------------

def measure_accounts(store: CaseRepository, runs: int) -> list[Row]:
    """Signing in and unlocking: Argon2id dominates both (one run to sign in, two to unlock)."""
    login = next(iter(USERS))
    credentials = store.credentials(store.account(login).id)
    return [
        timing_row("Argon2id password verify alone (password_matches)",
                   lambda: password_matches(credentials.password_hash, PASSWORD), runs),
        timing_row("sign-in (authenticate: Argon2id verify + audit event)",
                   lambda: authenticate(store, login, PASSWORD), runs),
        timing_row("key opening alone (Argon2id key derivation + AES-256-GCM open)",
                   lambda: open_private_key(credentials.sealed, PASSWORD,
                                            credentials.public_key), runs),
        timing_row("unlock (sign-in + key derivation + AES-GCM open)",
                   lambda: AccountSession(store).unlock(PASSWORD, login), runs),
    ]


def measure_raw_signature(signer: UserSigner) -> list[Row]:
    """Ed25519 over a review statement, without the store around it (mean of 2,000)."""
    content = ReviewContent(1, 1, "ab" * 32, "override", "negative", "the text says otherwise",
                            "approved", "2026-12-04T19:51:25.123456+00:00")
    statement = review_statement(content, signer.signatory, 1234, "cd" * 32)
    signature = signer.sign(statement)
    public = public_hex(signer.private)
    assert signature_valid(public, signature, statement)
    return [Row(f"Ed25519 {name} of a review statement ({len(statement)} bytes)",
                f"{per_call_us(function):,.0f} µs")
            for name, function in (("sign", lambda: signer.sign(statement)),
                                   ("verify", lambda: signature_valid(public, signature,
                                                                      statement)))]


def per_call_us(function: Callable[[], object], calls: int = 2000) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - began) / calls * 1e6


def measure_reads(store: CaseRepository, signed: int, unsigned: int, runs: int) -> list[Row]:
    """Reading a case checks its reviews' signatures: a signed case beside an unreviewed one."""
    return [timing_row("get_case, a case with a signed review (signature checked)",
                       lambda: store.get_case(signed), runs),
            timing_row("get_case, a case without a review",
                       lambda: store.get_case(unsigned), runs)]


# -- the history ------------------------------------------------------------------------------

def fill(store: CaseRepository, signers: dict[str, UserSigner], cases: int,
         reviews: int) -> tuple[float, list[float], list[int]]:
    """``cases`` cases in chunks, each chunk followed by its share of ``reviews`` signed
    reviews. Returns the seconds taken, each review's seconds, and the reviewed case ids."""
    rng, words = random.Random(1), bench_store.Words(random.Random(0))
    chunk = bench_store.FILL_CHUNK
    review_times, reviewed, began = [], [], time.perf_counter()
    for start in range(0, cases, chunk):
        count = min(chunk, cases - start)
        batch = bench_store.new_cases(rng, words, start + 1, count, bench_store.MODELS[0])
        added = [write.id for write in store.add_cases(batch)]
        due = reviews * (start + count) // cases - len(reviewed)
        for case_id, case in zip(added[:due], batch, strict=False):
            began_review = time.perf_counter()
            sign_review(store, rng, signers, case_id, case.prediction.label)
            review_times.append(time.perf_counter() - began_review)
            reviewed.append(case_id)
        if (start // chunk) % 20 == 19:
            print(f"  {start + count:,} cases, {len(reviewed):,} signed reviews, "
                  f"{time.perf_counter() - began:.0f} s", file=sys.stderr)
    return time.perf_counter() - began, review_times, reviewed


def sign_review(store: CaseRepository, rng: random.Random, signers: dict[str, UserSigner],
                case_id: int, predicted: str) -> None:
    signer, roll = signers[rng.choice(list(signers))], rng.random()
    if roll < 0.6:
        store.review_case(case_id, signer, "accept", meaning="approved")
    elif roll < 0.85:
        other = rng.choice([x for x in bench_store.LABELS if x != predicted])
        store.review_case(case_id, signer, "override", other, "the text says otherwise",
                          meaning="approved")
    else:
        store.review_case(case_id, signer, "defer", reason="needs a colleague")


def review_rows(seconds: list[float]) -> list[Row]:
    if not seconds:
        return []
    samples = [s * 1000 for s in seconds]
    tail = samples[-max(1, len(samples) // 10):]
    return [Row(f"signed review (review_case with an unlocked key), all {len(samples):,}",
                ms(statistics.median(samples)), ms(bench_store.p95(samples))),
            Row(f"signed review, the last {len(tail):,} (history at its largest)",
                ms(statistics.median(tail)), ms(bench_store.p95(tail)))]


def measure_verify(path: Path) -> tuple[list[Row], list[str]]:
    """``audit verify`` on the reopened store, with its stages and the longest silence."""
    reports: list[tuple[float, Progress]] = []
    load = os.getloadavg()[0]
    began = time.perf_counter()
    with open_store(path, actor="bench", daily_backup=False) as store:
        opened = time.perf_counter()
        result = store.verify_chain(
            progress=lambda p: reports.append((time.perf_counter(), p)))
        seconds = time.perf_counter() - opened
    status = "ok" if result.ok else f"BROKEN: {result.reason}"
    rows = [Row(f"audit verify: verify_chain ({result.events:,} events, "
                f"{result.signatures:,} signatures, {status})", ms(seconds * 1000), "",
                f"<= {VERIFY_TARGET_SECONDS:.0f} s",
                "yes" if seconds <= VERIFY_TARGET_SECONDS else "NO"),
            Row("  opening the store before it", ms((opened - began) * 1000))]
    moments = [opened] + [moment for moment, _ in reports] + [opened + seconds]
    gap = max(b - a for a, b in pairwise(moments))
    rows.append(Row(f"  longest time without a progress report ({len(reports):,} reports)",
                    ms(gap * 1000)))
    stage_start = opened
    for moment, report in reports:
        if report.message:
            rows.append(Row(f"  stage until '{report.message}'",
                            ms((moment - stage_start) * 1000)))
            stage_start = moment
    notes = [f"anchored to event {result.anchored_to}, {result.unanchored_events} event(s) "
             f"after the last checkpoint; {len(result.bad_signatures)} bad signature(s); "
             f"{result.unsigned_before_accounts} review(s) from before accounts; 1-minute "
             f"load average {load:.2f} when it started (this process makes about 1; more means "
             "other work shared the CPUs)"]
    return rows, notes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=10, help="timed runs per row")
    args = parser.parse_args()
    if not 0 < args.reviews <= args.cases:
        parser.error("--reviews must be between 1 and --cases (one review per case)")
    folder = Path(tempfile.mkdtemp(prefix="casewise-signing-"))
    path = folder / "casewise.db"
    try:
        with open_store(path, actor="bench", daily_backup=False) as store:
            store.set_anchor(installation_key(folder))
            signers = make_users(store)
            print(f"filling {path} with {args.cases:,} cases and {args.reviews:,} signed "
                  "reviews ...", file=sys.stderr)
            fill_seconds, review_times, reviewed = fill(store, signers, args.cases,
                                                        args.reviews)
            rows = measure_accounts(store, args.runs)
            rows += review_rows(review_times)
            rows += measure_raw_signature(signers["ann"])
            done = set(reviewed)
            unreviewed = next(i for i in range(1, args.cases + 1) if i not in done)
            rows += measure_reads(store, reviewed[len(reviewed) // 2], unreviewed, args.runs)
            rows.append(Row(f"fill: {args.cases:,} cases + {len(reviewed):,} signed reviews",
                            ms(fill_seconds * 1000)))
        verify_rows, notes = measure_verify(path)
        rows += verify_rows
        rows.append(Row("database file size", f"{path.stat().st_size / 2**20:,.0f} MiB"))
        params = ", ".join(f"{k} {v}" for k, v in PARAMETERS.items())
        print(f"Signing benchmark: {args.cases:,} cases, {len(reviewed):,} signed reviews by "
              f"{len(signers)} users; Argon2 parameters: {params}; {args.runs} runs per timed "
              f"row (after one warm-up); SQLite {sqlite3.sqlite_version}, {os.cpu_count()} "
              f"CPUs. Verify: {'; '.join(notes)}.\n")
        print(table(rows))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
