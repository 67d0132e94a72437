"""Fixed, seeded, stratified splits, recorded so that every number can be traced to its rows.

train        fits the weights
validation   early stopping and the temperature
calibration  kept for the escalation policy; never trained on, never used for the temperature
test         the reported metrics
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.data import LabeledTexts
from models.errors import DataError

SPLIT_NAMES = ("train", "validation", "calibration", "test")
ONE_FILE_FRACTIONS = {"train": 0.60, "validation": 0.10, "calibration": 0.15, "test": 0.15}
TRAIN_FILE_FRACTIONS = {"train": 0.85, "validation": 0.15}
TEST_FILE_FRACTIONS = {"calibration": 0.50, "test": 0.50}
SMALL_CLASSES_SHOWN = 5  # classes named in the message about classes with too few rows


@dataclass(frozen=True)
class SplitRecipe:
    """How the splits were made: enough to rebuild them from the same source files."""

    strategy: str
    seed: int
    fractions: dict[str, float]
    sources: dict[str, str]
    row_numbers: dict[str, list[int]]
    dropped_overlap: int = 0

    def sizes(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.row_numbers.items()}

    def to_dict(self) -> dict[str, object]:
        return {**self.__dict__, "sizes": self.sizes()}


@dataclass(frozen=True)
class Splits:
    train: LabeledTexts
    validation: LabeledTexts
    calibration: LabeledTexts
    test: LabeledTexts
    recipe: SplitRecipe = field(repr=False)

    def labels(self) -> list[str]:
        """The label set, sorted, taken from the training split."""
        return sorted(set(self.train.labels))

    def by_name(self) -> dict[str, LabeledTexts]:
        return {name: getattr(self, name) for name in SPLIT_NAMES}


def stratified_partition(
    labels: tuple[str, ...], fractions: dict[str, float], seed: int
) -> dict[str, list[int]]:
    """Split indices class by class; the first name takes the rest, every other gets >= 1."""
    rng = np.random.default_rng(seed)
    names = list(fractions)
    parts: dict[str, list[int]] = {name: [] for name in names}
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(members)
        start = 0
        for name in names[1:]:
            count = max(1, round(len(members) * fractions[name]))
            parts[name].extend(members[start : start + count])
            start += count
        parts[names[0]].extend(members[start:])
    return {name: sorted(indices) for name, indices in parts.items()}


def _require_min_per_class(data: LabeledTexts, minimum: int, source: str, why: str) -> None:
    counts = data.class_counts()
    if len(counts) < 2:
        found = ", ".join(repr(k) for k in counts) or "none"
        raise DataError(
            f"{source}: a classifier needs at least two classes; labels found: {found}. "
            "Check --label-col."
        )
    small = {label: n for label, n in counts.items() if n < minimum}
    if small:
        # A file of hundreds of one-row labels (a free-text column given as the label) must
        # not produce a message of thousands of characters: say how many, show a few.
        shown = list(small.items())[:SMALL_CLASSES_SHOWN]
        listed = ", ".join(f"{label[:40]!r} ({n})" for label, n in shown)
        if len(small) == 1:
            raise DataError(
                f"{source}: too few rows for class {listed}; each class needs at least "
                f"{minimum} {why}. Add rows for it, or merge or drop that class."
            )
        more = f", and {len(small) - len(shown)} more" if len(small) > len(shown) else ""
        hint = (" Is --label-col the column of labels?"
                if len(small) > len(counts) / 2 and len(counts) > 20 else "")
        raise DataError(
            f"{source}: {len(small)} of {len(counts)} classes have too few rows: {listed}"
            f"{more}; each class needs at least {minimum} {why}. Add rows for them, or merge "
            f"or drop those classes.{hint}"
        )


def split_one_file(data: LabeledTexts, source: str, seed: int) -> Splits:
    """One labelled file: a stratified four-way split."""
    _require_min_per_class(data, len(SPLIT_NAMES) + 1, source,
                           "so that train, validation, calibration and test each get one")
    parts = stratified_partition(data.labels, ONE_FILE_FRACTIONS, seed)
    recipe = SplitRecipe(
        "one-file", seed, dict(ONE_FILE_FRACTIONS), dict.fromkeys(SPLIT_NAMES, source),
        {name: [data.row_numbers[i] for i in parts[name]] for name in SPLIT_NAMES},
    )
    return Splits(*(data.subset(parts[name]) for name in SPLIT_NAMES), recipe=recipe)


def split_train_and_test(
    train_data: LabeledTexts, train_source: str,
    test_data: LabeledTexts, test_source: str, seed: int,
) -> Splits:
    """A training file and a test file: train -> train/validation, test -> calibration/test."""
    _require_min_per_class(train_data, 3, train_source,
                           "so that train and validation each get one")
    unknown = sorted(set(test_data.labels) - set(train_data.labels))
    if unknown:
        raise DataError(
            f"{test_source}: labels {unknown} do not occur in {train_source}; "
            "the model cannot learn them. Fix the labels or add training rows."
        )
    seen = set(train_data.texts)
    # A held-out row that repeats a training text would flatter the metrics.
    kept = [i for i, text in enumerate(test_data.texts) if text not in seen]
    held_out = test_data.subset(kept)
    fit_parts = stratified_partition(train_data.labels, TRAIN_FILE_FRACTIONS, seed)
    held_parts = stratified_partition(held_out.labels, TEST_FILE_FRACTIONS, seed)
    sets = {
        "train": train_data.subset(fit_parts["train"]),
        "validation": train_data.subset(fit_parts["validation"]),
        "calibration": held_out.subset(held_parts["calibration"]),
        "test": held_out.subset(held_parts["test"]),
    }
    recipe = SplitRecipe(
        "train-and-test-files", seed,
        {**TRAIN_FILE_FRACTIONS, **TEST_FILE_FRACTIONS},
        {"train": train_source, "validation": train_source,
         "calibration": test_source, "test": test_source},
        {name: list(part.row_numbers) for name, part in sets.items()},
        dropped_overlap=len(test_data) - len(held_out),
    )
    return Splits(**sets, recipe=recipe)
