"""Recall per identifier kind and false hides of ``models.redaction.redact`` (issue 14).

Labelled sets: the tuning set the rules were written against
(tests/data/redaction_tuning.jsonl) and held-out sets made by templates filled from value
lists written separately (benchmarks/data/redaction_heldout*.jsonl, from
benchmarks/redaction_heldout.py); held-out 3 covers the twelve kinds the first two never
label (PHONE, FAX, SSN, MRN, HEALTH_PLAN, ACCOUNT, CARD, LICENSE, URL, IP, ZIP, ADDRESS).
An identifier is found when all its letters and digits are hidden; a false hide is a word
outside every label that is hidden (of the clean words).
Also the time per text, and how much of it the issue-14 rules add.

    .venv/bin/python benchmarks/bench_redaction.py [--misses]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models import redaction, redaction_rules  # noqa: E402
from models.redaction_eval import Labelled, Score, load, score  # noqa: E402

SETS = {"tuning (hand-written, rules tuned on it)": ROOT / "tests/data/redaction_tuning.jsonl",
        "held-out (templates x separate value lists)":
            ROOT / "benchmarks/data/redaction_heldout.jsonl",
        "held-out 2b (new templates and lists, after two rule changes)":
            ROOT / "benchmarks/data/redaction_heldout_2.jsonl",
        "held-out 3 (the twelve kinds sets 1 and 2b never label, plus numeric clean text)":
            ROOT / "benchmarks/data/redaction_heldout_3.jsonl"}


def table(name: str, items: list[Labelled], show_misses: bool) -> Score:
    redactions = [redaction.redact(item.text) for item in items]
    result = score([(item, [(e.start, e.end) for e in done.entities])
                    for item, done in zip(items, redactions, strict=True)])
    print(f"\n{name}: {len(items)} texts")
    print(f"{'kind':<10} {'identifiers':>11} {'found':>6} {'recall':>7}")
    for kind in sorted(result.identifiers):
        print(f"{kind:<10} {result.identifiers[kind]:>11} {result.found.get(kind, 0):>6} "
              f"{result.recall(kind):>7.3f}")
    total, found = sum(result.identifiers.values()), sum(result.found.values())
    print(f"{'all':<10} {total:>11} {found:>6} {found / total:>7.3f}")
    hides = len(result.false_hides)
    print(f"false hides: {hides} / {result.clean_words} clean words "
          f"= {hides / result.clean_words:.2%}")
    if show_misses:
        misses(items, redactions)
    return result


def summary(results: dict[str, Score]) -> None:
    """Recall by kind (rows) and set (columns), found/identifiers; then false hides."""
    names = [name.split(" (")[0] for name in results]
    width = max(14, *(len(name) + 2 for name in names))
    kinds = sorted({kind for result in results.values() for kind in result.identifiers})
    print(f"\nrecall by kind and set\n{'kind':<12}" + "".join(f"{n:>{width}}" for n in names))

    def cell(found: int, total: int) -> str:
        return f"{found}/{total} {found / total:.3f}" if total else "-"

    for kind in kinds:
        print(f"{kind:<12}" + "".join(
            f"{cell(r.found.get(kind, 0), r.identifiers.get(kind, 0)):>{width}}"
            for r in results.values()))
    print(f"{'all':<12}" + "".join(
        f"{cell(sum(r.found.values()), sum(r.identifiers.values())):>{width}}"
        for r in results.values()))
    hides = [f"{len(r.false_hides)}/{r.clean_words} {len(r.false_hides) / r.clean_words:.2%}"
             for r in results.values()]
    print(f"{'false hides':<12}" + "".join(f"{h:>{width}}" for h in hides))


def misses(items: list[Labelled], redactions: list[redaction.Redaction]) -> None:
    """Each miss by kind and each false hide, with its text and the redacted text."""
    missed: dict[str, list[str]] = {}
    hidden: list[str] = []
    for item, done in zip(items, redactions, strict=True):
        one = score([(item, [(e.start, e.end) for e in done.entities])])
        for kind, text in one.missed:
            missed.setdefault(kind, []).append(f"{text!r}\n      in:  {item.text}\n"
                                               f"      out: {done.text}")
        if one.false_hides:
            hidden.append(f"{', '.join(map(repr, one.false_hides))}\n      in:  {item.text}\n"
                          f"      out: {done.text}")
    for kind in sorted(missed):
        print(f"missed {kind} ({len(missed[kind])}):")
        print(*(f"  - {line}" for line in missed[kind]), sep="\n")
    print(f"falsely hidden ({len(hidden)} texts):")
    print(*(f"  - {line}" for line in hidden), sep="\n")


def timing(texts: list[str], rounds: int = 3) -> None:
    """Best time a text with and without the issue-14 patterns and span rules, alternated."""
    with_rules = redaction._engine()
    patterns, spans_rules = redaction_rules.EXTRA_PATTERNS, (
        redaction_rules.false_name, redaction_rules.lower_case_names,
        redaction_rules.propagate_names, redaction_rules.trim_city)
    redaction_rules.EXTRA_PATTERNS = {}
    try:
        without_rules = redaction._build()
    finally:
        redaction_rules.EXTRA_PATTERNS = patterns

    def plain(on: bool) -> None:
        redaction_rules.false_name = spans_rules[0] if on else (lambda *a: False)
        redaction_rules.lower_case_names = spans_rules[1] if on else (lambda *a: [])
        redaction_rules.propagate_names = spans_rules[2] if on else (lambda *a: [])
        redaction_rules.trim_city = spans_rules[3] if on else (lambda text, span: span)
        redaction._cached = with_rules if on else without_rules

    best = {True: float("inf"), False: float("inf")}
    try:
        for _ in range(rounds):
            for on in (False, True):
                plain(on)
                started = time.perf_counter()
                for text in texts:
                    redaction.redact(text)
                best[on] = min(best[on], (time.perf_counter() - started) / len(texts) * 1000)
    finally:
        plain(True)
    lengths = [len(t) for t in texts]
    print(f"\ntiming over {len(texts)} texts (median {statistics.median(lengths):.0f} chars), "
          f"best of {rounds} alternated rounds: {best[True]:.2f} ms a text with the issue-14 "
          f"rules, {best[False]:.2f} ms without: {best[True] - best[False]:+.2f} ms a text")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--misses", action="store_true", help="list misses and false hides")
    args = parser.parse_args()
    started = time.perf_counter()
    print(redaction.detector_description(), f"(built in {time.perf_counter() - started:.1f} s)")
    everything, results = [], {}
    for name, path in SETS.items():
        items = load(path)
        everything += [item.text for item in items]
        results[name] = table(name, items, args.misses)
    summary(results)
    print("\nSafe Harbor kinds not handled:", *redaction.NOT_HANDLED, sep="\n- ")
    timing(everything)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
