"""Training, saving, verifying and loading, on a tiny random BERT and synthetic data."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from models.artifact import MANIFEST_FILE, verify_artifact
from models.classifier import Classifier
from models.errors import DataDirError, DataError, ModelIntegrityError
from models.progress import CancelFlag, Cancelled
from models.registry import ModelRegistry
from models.train_job import DatasetSpec, train_and_save
from tests.helpers.data import synthetic_rows, write_csv

CARD_CONTRACT = [
    ("metrics", "test", "accuracy"), ("metrics", "test", "macro_f1"),
    ("metrics", "test", "ece_before"), ("metrics", "test", "ece_after"),
    ("baseline", "test", "accuracy"), ("baseline", "test", "macro_f1"),
    ("labels",), ("base_model",), ("training_data", "name"), ("training_data", "rows"),
]


def active_classifier(home: Path) -> Classifier:
    return Classifier.load(ModelRegistry(home).active_path())


def test_trained_model_has_the_card_contract_and_verifies(trained_home):
    registry = ModelRegistry(trained_home)
    (record,) = registry.records()
    assert record.active
    path = Path(record.path)
    verify_artifact(path)
    card = json.loads((path / "model_card.json").read_text())
    for keys in CARD_CONTRACT:
        value = card
        for key in keys:
            value = value[key]
    assert card["labels"] == ["negative", "neutral", "positive"]
    assert set(card["training_data"]["rows"]) == {"train", "validation", "calibration", "test"}
    assert card["training"]["temperature"] > 0
    markdown = (path / "MODEL_CARD.md").read_text()
    for heading in ("Intended use", "Training data", "Limitations", "Hashes"):
        assert f"## {heading}" in markdown
    held_out = (path / "splits" / "calibration.jsonl").read_text().splitlines()
    assert len(held_out) == card["training_data"]["rows"]["calibration"]


def test_the_tiny_model_learns_the_synthetic_task(trained_home):
    card = json.loads((Path(ModelRegistry(trained_home).active_path()) /
                       "model_card.json").read_text())
    # Chance is 1/3; the words carry the class, so a working training loop does far better.
    assert card["metrics"]["test"]["accuracy"] >= 0.7


def test_predictions_are_calibrated_probabilities(trained_home):
    classifier = active_classifier(trained_home)
    prediction = classifier.predict("wonderful relief the medicine works great")
    assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)
    assert np.isclose(sum(prediction.probabilities.values()), 1.0)
    assert prediction.model_id == ModelRegistry(trained_home).active_id()
    assert not prediction.truncated
    raw = classifier.logits(["wonderful relief the medicine works great"])[0]
    expected = np.exp(raw / classifier.temperature) / np.exp(raw / classifier.temperature).sum()
    assert np.allclose(list(prediction.probabilities.values()), expected, atol=1e-6)


def test_batch_and_single_predictions_agree_and_long_texts_are_read_whole(trained_home):
    from models.windows import READ_LIMIT_TOKENS

    classifier = active_classifier(trained_home)
    assert classifier.pooling == "mean" and classifier.read_limit == READ_LIMIT_TOKENS
    past_limit = "great " * READ_LIMIT_TOKENS
    texts = ["awful rash", "okay unsure mixed", "great " * 200, past_limit]
    batch = classifier.predict_batch(texts)
    for text, prediction in zip(texts, batch, strict=True):
        single = classifier.predict(text)
        assert single.label == prediction.label
        assert np.allclose(list(single.probabilities.values()),
                           list(prediction.probabilities.values()), atol=1e-5)
    # Longer than the 32-token window, read whole in windows; only past the limit is cut.
    assert [p.truncated for p in batch] == [False, False, False, True]
    assert batch[2].n_tokens > classifier.max_length and batch[2].windows > 5
    assert batch[0].windows == 1 and batch[3].n_tokens > READ_LIMIT_TOKENS


def test_the_tail_of_a_long_text_counts(trained_home):
    """Before: a text was cut at the window, and what came after it changed nothing."""
    classifier = active_classifier(trained_home)
    head = "great wonderful relief the medicine works " * 4
    tail = "awful terrible rash and pain, horrible " * 12
    whole = classifier.predict(head + tail)
    assert whole.windows > 2
    classifier.pooling = "first"  # the old reading: the first window only
    first = classifier.predict(head + tail)
    classifier.pooling = "mean"
    assert first.truncated and not whole.truncated
    assert whole.probabilities["negative"] > first.probabilities["negative"] + 0.2


def test_empty_case_text_is_refused(trained_home):
    with pytest.raises(DataError, match="empty"):
        active_classifier(trained_home).predict("   ")


def test_training_is_reproducible(tmp_path, tiny_base_dir, tiny_config, synthetic_csv):
    ids = []
    for run in ("a", "b"):
        registry = ModelRegistry(tmp_path / run)
        record = train_and_save(DatasetSpec("s", synthetic_csv), registry, tiny_config,
                                base_dir=tiny_base_dir)
        ids.append(record.id.split("-")[-1])  # the weights' hash
    assert ids[0] == ids[1]


def test_cancelled_training_leaves_nothing(tmp_path, tiny_base_dir, tiny_config, synthetic_csv):
    registry = ModelRegistry(tmp_path / "home")
    cancel = CancelFlag()
    seen = []

    def progress(p):
        seen.append(p)
        if p.stage == "training" and p.done >= 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        train_and_save(DatasetSpec("s", synthetic_csv), registry, tiny_config, progress, cancel,
                       base_dir=tiny_base_dir)
    assert registry.records() == [] and registry.active_id() is None
    assert [p for p in registry.models_dir.iterdir()] == []
    training = [p for p in seen if p.stage == "training"]
    assert training[-1].done == 2 and training[-1].total > 2
    assert training[-1].eta_seconds is not None


def test_failure_while_saving_leaves_no_partial_model(tmp_path, tiny_base_dir, tiny_config,
                                                      synthetic_csv, monkeypatch):
    registry = ModelRegistry(tmp_path / "home")

    def broken(card):
        raise OSError("disk full")

    monkeypatch.setattr("models.train_job.render_markdown", broken)
    with pytest.raises(OSError, match="disk full"):
        train_and_save(DatasetSpec("s", synthetic_csv), registry, tiny_config,
                       base_dir=tiny_base_dir)
    assert list(registry.models_dir.iterdir()) == []


def test_new_model_does_not_replace_active_one_unless_asked(trained_home, tmp_path,
                                                            tiny_base_dir, tiny_config):
    import shutil

    home = tmp_path / "copy"
    shutil.copytree(trained_home, home)
    registry = ModelRegistry(home)
    first = registry.active_id()
    data = write_csv(tmp_path / "more.csv", synthetic_rows(seed=5))
    second = train_and_save(DatasetSpec("more", data), registry, tiny_config, activate=False,
                            base_dir=tiny_base_dir)
    assert registry.active_id() == first and not second.active
    registry.activate(second.id)
    assert registry.active_id() == second.id
    assert [r.active for r in registry.records()] == [False, True]


def test_bad_data_fails_before_training(tmp_path, tiny_base_dir, tiny_config):
    rows = [{"text": f"t{i}", "label": "a" if i < 30 else "rare"} for i in range(32)]
    data = write_csv(tmp_path / "x.csv", rows)
    registry = ModelRegistry(tmp_path / "home")
    with pytest.raises(DataError, match="'rare' \\(2\\)"):
        train_and_save(DatasetSpec("x", data), registry, tiny_config, base_dir=tiny_base_dir)
    assert registry.records() == []


def unwritable_dir(tmp_path: Path) -> Path:
    """A directory this process cannot write to, even as root (CI runs as root)."""
    if os.geteuid() == 0:
        if not Path("/proc/self").is_dir():
            pytest.skip("needs /proc to make a directory root cannot write")
        return Path("/proc/casewise-test-home")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


def test_unwritable_data_dir_is_reported_before_training(tmp_path, tiny_base_dir, tiny_config,
                                                         synthetic_csv, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("training started before the data directory was checked")

    monkeypatch.setattr("models.train_job.train_by_recipe", must_not_train)
    with pytest.raises(DataDirError, match="CASEWISE_HOME"):
        train_and_save(DatasetSpec("s", synthetic_csv), ModelRegistry(unwritable_dir(tmp_path)),
                       tiny_config, base_dir=tiny_base_dir)


def test_data_dir_that_is_a_file_is_reported_before_training(tmp_path, tiny_base_dir,
                                                             tiny_config, synthetic_csv):
    not_a_dir = tmp_path / "home"
    not_a_dir.write_text("I am a file")
    with pytest.raises(DataDirError, match="CASEWISE_HOME"):
        train_and_save(DatasetSpec("s", synthetic_csv), ModelRegistry(not_a_dir), tiny_config,
                       base_dir=tiny_base_dir)


@pytest.mark.parametrize("damage", ["edit weights", "delete tokenizer", "edit labels"])
def test_hand_edited_model_is_refused(trained_home, tmp_path, damage):
    import shutil

    path = tmp_path / "model"
    shutil.copytree(ModelRegistry(trained_home).active_path(), path)
    if damage == "edit weights":
        with open(path / "model.safetensors", "r+b") as handle:
            handle.seek(-16, os.SEEK_END)
            handle.write(b"\x00" * 16)
    elif damage == "delete tokenizer":
        (path / "tokenizer.json").unlink()
    else:
        meta = json.loads((path / "casewise.json").read_text())
        meta["labels"] = list(reversed(meta["labels"]))
        (path / "casewise.json").write_text(json.dumps(meta))
    with pytest.raises(ModelIntegrityError):
        Classifier.load(path)


def test_model_without_manifest_is_refused(trained_home, tmp_path):
    import shutil

    path = tmp_path / "model"
    shutil.copytree(ModelRegistry(trained_home).active_path(), path)
    (path / MANIFEST_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="MANIFEST"):
        Classifier.load(path)
