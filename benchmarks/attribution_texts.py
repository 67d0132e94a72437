"""The benchmark's texts: the first demo test reviews, and long medical abstracts."""

from __future__ import annotations

from pathlib import Path

from models.data import load_demo, load_labeled

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
MEDICAL = SHARED / "medical_abstracts" / "medical_tc_test.csv"


def demo_texts(classifier, count: int) -> list[str]:
    (_, _), (test, _) = load_demo()
    return [text[: classifier.seen_prefix(text)] for text in test.texts[:count]]


def long_texts(classifier, count: int) -> list[str]:
    """The first medical abstracts of the shared test file (none when ../shared is absent)."""
    if not MEDICAL.is_file() or count <= 0:
        return []
    data, _ = load_labeled(MEDICAL, "medical_abstract", "condition_label")
    return [text[: classifier.seen_prefix(text)] for text in data.texts[:count]]
