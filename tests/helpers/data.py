"""Paths and synthetic labelled data shared by the tests and the fixtures in conftest.py."""

from __future__ import annotations

import csv
import random
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

CLASS_WORDS = {
    "negative": ["awful", "terrible", "worse", "rash", "pain", "stopped", "horrible"],
    "neutral": ["okay", "unsure", "mixed", "somewhat", "average", "unclear", "fine"],
    "positive": ["great", "wonderful", "better", "relief", "works", "excellent", "happy"],
}
FILLER = ["the", "medicine", "i", "took", "it", "for", "weeks", "my", "doctor", "and", "was"]

# The case history of conftest's ``scored_db``: three pages of the history table, the first
# SCORED_REVIEWS cases reviewed.
SCORED_CASES = 300
SCORED_REVIEWS = 40


def synthetic_rows(n_per_class: int = 40, seed: int = 0) -> list[dict[str, str]]:
    """Short texts whose class is signalled by a few words among filler."""
    rng = random.Random(seed)
    rows = []
    for label, words in CLASS_WORDS.items():
        for i in range(n_per_class):
            tokens = rng.sample(FILLER, 6) + rng.sample(words, 2)
            rng.shuffle(tokens)
            rows.append({"text": " ".join(tokens) + f" case {i}", "label": label})
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path
