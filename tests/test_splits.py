import pytest

from models.data import LabeledTexts
from models.errors import DataError
from models.splits import SPLIT_NAMES, split_one_file, split_train_and_test


def labeled(counts: dict[str, int], prefix: str = "t") -> LabeledTexts:
    labels = [label for label, n in counts.items() for _ in range(n)]
    texts = [f"{prefix}{i}" for i in range(len(labels))]
    return LabeledTexts(tuple(texts), tuple(labels), tuple(range(1, len(labels) + 1)))


def test_one_file_split_is_disjoint_complete_stratified_and_seeded():
    data = labeled({"a": 60, "b": 30, "c": 10})
    splits = split_one_file(data, "f.csv", seed=3)
    rows = [r for name in SPLIT_NAMES for r in splits.recipe.row_numbers[name]]
    assert sorted(rows) == list(range(1, 101))
    assert splits.recipe.sizes() == {"train": 60, "validation": 10, "calibration": 15, "test": 15}
    assert splits.test.class_counts() == {"a": 9, "b": 4, "c": 2}
    again = split_one_file(data, "f.csv", seed=3)
    assert again.recipe.row_numbers == splits.recipe.row_numbers
    other = split_one_file(data, "f.csv", seed=4)
    assert other.recipe.row_numbers != splits.recipe.row_numbers


def test_every_split_gets_every_class_when_there_are_enough_rows():
    splits = split_one_file(labeled({"a": 40, "b": 5}), "f.csv", seed=0)
    for part in splits.by_name().values():
        assert set(part.labels) == {"a", "b"}


def test_a_class_with_too_few_rows_is_named():
    with pytest.raises(DataError) as info:
        split_one_file(labeled({"a": 40, "rare": 3}), "f.csv", seed=0)
    assert "'rare' (3)" in str(info.value) and "at least 5" in str(info.value)


def test_one_class_is_not_a_classifier():
    with pytest.raises(DataError, match="at least two classes"):
        split_one_file(labeled({"a": 40}), "f.csv", seed=0)


def test_train_and_test_files_keep_test_rows_out_of_training():
    train = labeled({"a": 40, "b": 20}, prefix="train")
    test = LabeledTexts(("train0", "x1", "x2", "x3", "x4", "x5"), ("a", "a", "a", "b", "b", "b"),
                        (1, 2, 3, 4, 5, 6))
    splits = split_train_and_test(train, "tr.csv", test, "te.csv", seed=1)
    assert splits.recipe.dropped_overlap == 1
    assert "train0" not in splits.calibration.texts + splits.test.texts
    assert len(splits.calibration) + len(splits.test) == 5
    assert splits.recipe.sources["test"] == "te.csv"


def test_test_labels_unknown_to_training_are_refused():
    train = labeled({"a": 10, "b": 10})
    test = LabeledTexts(("q",), ("zzz",), (1,))
    with pytest.raises(DataError, match="zzz"):
        split_train_and_test(train, "tr.csv", test, "te.csv", seed=1)
