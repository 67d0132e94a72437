"""Stacking the encoder with the TF-IDF baseline (models/stacking.py, models/stacked_training.py):
the TF-IDF half saved as plain arrays that score exactly as scikit-learn did, a stacked tiny
model trained, saved, signed and read back answering as its card says, the automatic choice
made on out-of-fold validation numbers, damaged or inconsistent files refused, and the
attributions of a stacked model still adding up to its probability."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from explainers.attribution import explain
from models.artifact import META_FILE, verify_artifact
from models.baseline import baseline_probabilities, fit_baseline
from models.classifier import Classifier
from models.errors import ModelIntegrityError
from models.registry import ModelRegistry
from models.stacking import (
    STACKING_FILE,
    TFIDF_FILE,
    TFIDF_WEIGHTS_FILE,
    Stacker,
    TfidfModel,
    stacking_decision,
)
from models.train_job import DatasetSpec, read_held_out, train_and_save
from tests.helpers.data import synthetic_rows, write_csv

WORDS = ["good great fine relief", "bad awful worse rash", "great good good", "awful bad bad",
         "fine fine good relief", "worse awful rash", "okay mixed", "mixed okay fine bad"]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_saved_arrays_score_as_scikit_learn_did(tmp_path, n_classes):
    texts = WORDS * 4
    y = np.array([i % n_classes for i in range(len(texts))])
    pipeline, c = fit_baseline(texts, y, texts, y, seed=0)
    # One more label than the data has: a class absent from training gets the floor.
    TfidfModel.from_pipeline(pipeline, n_classes + 1).save(tmp_path, {"C": c})
    loaded = TfidfModel.load(tmp_path)
    new = ["good bad words never seen", "awful", "", "Great GREAT fine, bad!"]
    expected = np.log(np.clip(baseline_probabilities(pipeline, new, n_classes + 1), 1e-6, 1))
    np.testing.assert_allclose(loaded.log_probabilities(new), expected, atol=1e-9)
    # Arrays, not a pickle: nothing in the folder can run code when it is read.
    assert sorted(p.name for p in tmp_path.iterdir()) == [TFIDF_FILE, TFIDF_WEIGHTS_FILE]


def test_a_stacked_model_answers_as_its_card_says(tmp_path, tiny_base_dir, tiny_config):
    data = write_csv(tmp_path / "cases.csv", synthetic_rows(30, seed=4))
    config = dataclasses.replace(tiny_config, recipe="stacked", max_epochs=2, min_epochs=1)
    record = train_and_save(DatasetSpec("cases", data), ModelRegistry(tmp_path / "home"),
                            config, base_dir=tiny_base_dir)
    path = Path(record.path)
    card = json.loads((path / "model_card.json").read_text())
    meta = json.loads((path / META_FILE).read_text())
    assert card["training"]["recipe"] == "stacked"
    assert card["training"]["stacking"]["stack"] and card["training"]["stacking"]["reason"] == \
        "asked for"
    assert meta["stacked"] and meta["format"] == 2
    manifest = verify_artifact(path)
    assert {TFIDF_FILE, TFIDF_WEIGHTS_FILE, STACKING_FILE} <= set(manifest)
    assert "Stacked with the TF-IDF baseline: " in (path / "MODEL_CARD.md").read_text()

    classifier = Classifier.load(path)
    assert classifier.stacking is not None
    # The test metrics on the card were computed by the same joined model the app loads.
    texts, labels = read_held_out(path, "test")
    answers = classifier.predict_batch(texts)
    accuracy = sum(a.label == y for a, y in zip(answers, labels, strict=True)) / len(labels)
    assert accuracy == pytest.approx(card["metrics"]["test"]["accuracy"])
    # Its logits are the encoder's and the TF-IDF half's joined with the saved weights.
    encoder_only = Classifier(classifier.model, classifier.tokenizer, classifier.labels,
                              classifier.temperature, classifier.model_id,
                              classifier.max_length, pooling=classifier.pooling)
    w = json.loads((path / STACKING_FILE).read_text())
    sample = texts[:5]
    expected = (w["w_model"] * encoder_only.logits(sample)
                + w["w_tfidf"] * classifier.stacking.tfidf.log_probabilities(sample)
                + np.array(w["bias"]))
    np.testing.assert_allclose(classifier.logits(sample), expected, rtol=1e-5, atol=1e-5)


def test_attributions_of_a_stacked_model_add_up_to_its_probability(stacked_model):
    classifier = Classifier.load(stacked_model)
    result = explain(classifier, "the doctor said the rash was awful but the relief was good",
                     budget=60, with_checks=False)
    for cls in result.classes:
        total = result.base_values[cls] + result.values_for(cls).sum()
        assert total == pytest.approx(result.probabilities[cls], abs=1e-4)
    assert result.probabilities == pytest.approx(
        classifier.predict("the doctor said the rash was awful but the relief was good")
        .probabilities, abs=1e-5)


def test_the_tfidf_half_reads_what_the_encoder_read(stacked_model):
    classifier = Classifier.load(stacked_model)
    mask = classifier.tokenizer.mask_token
    long_text = " ".join(["awful"] * 20_000) + " wonderful"
    read = classifier.tfidf_texts([f"good {mask} relief", long_text], [False, True])
    assert read[0] == "good   relief"
    # "awful" is one word piece: the encoder reads read_limit tokens, two of them special.
    assert len(read[1].split()) == classifier.read_limit - 2
    assert "wonderful" not in read[1]


def test_a_damaged_tfidf_half_is_refused(stacked_model, tmp_path):
    import shutil

    copy = tmp_path / stacked_model.name
    shutil.copytree(stacked_model, copy)
    saved = json.loads((copy / TFIDF_FILE).read_text())
    first, second = list(saved["vocabulary"])[:2]
    saved["vocabulary"][first] = saved["vocabulary"][second]  # two terms on one column
    (copy / TFIDF_FILE).write_text(json.dumps(saved))
    with pytest.raises(ModelIntegrityError, match=TFIDF_FILE):
        Classifier.load(copy)  # the signed manifest names the changed file
    with pytest.raises(ModelIntegrityError, match="does not fit together"):
        Classifier.load(copy, verify=False)  # and past it, the arrays' own check
    saved["vocabulary"][first] = 0
    saved["classes"] = [0, 1, 7]  # a class the model has no label for
    (copy / TFIDF_FILE).write_text(json.dumps(saved))
    with pytest.raises(ModelIntegrityError, match="does not fit together"):
        Classifier.load(copy, verify=False)


def test_a_model_whose_files_and_description_disagree_is_refused(stacked_model, tmp_path):
    import shutil

    copy = tmp_path / stacked_model.name
    shutil.copytree(stacked_model, copy)
    (copy / STACKING_FILE).unlink()
    with pytest.raises(ModelIntegrityError, match="stacked with TF-IDF"):
        Classifier.load(copy, verify=False)  # past the manifest, which would name the file
    meta = json.loads((stacked_model / META_FILE).read_text())
    # Its temperature is not under the key a Casewise from before stacking reads.
    assert "temperature" not in meta and meta["stacked_temperature"] > 0
    (copy / META_FILE).write_text(json.dumps({**meta, "format": 3}))
    with pytest.raises(ModelIntegrityError, match="newer Casewise"):
        Classifier.load(copy, verify=False)


def decision_data(informative: str, seed: int = 0):
    """Validation logits where one half knows the label and the other is noise."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 3, 200)
    knows = np.eye(3)[truth] * 3 + rng.normal(0, 1.5, (200, 3))
    noise = rng.normal(0, 1.5, (200, 3))
    model, tfidf = (knows, noise) if informative == "model" else (noise, knows)
    tfidf = tfidf - np.log(np.exp(tfidf).sum(1, keepdims=True))  # as log-probabilities
    return model, tfidf, truth


def test_auto_stacks_only_when_out_of_fold_validation_says_it_wins():
    model, tfidf, truth = decision_data("tfidf")
    wins = stacking_decision(model, tfidf, truth, seed=1, forced=False)
    assert wins["stack"]
    scores = wins["validation_macro_f1"]
    assert scores["stacked_out_of_fold"] >= scores["encoder"] + wins["margin"]
    model, tfidf, truth = decision_data("model")
    loses = stacking_decision(model, tfidf, truth, seed=1, forced=False)
    assert not loses["stack"] and loses["reason"].startswith("not stacked")
    assert stacking_decision(model, tfidf, truth, seed=1, forced=True)["stack"]


def test_a_class_absent_from_the_fitting_rows_keeps_a_neutral_bias():
    model, tfidf, truth = decision_data("tfidf", seed=3)
    keep = truth != 2
    stacker = Stacker.fit(model[keep], tfidf[keep], truth[keep])
    assert stacker.bias[2] == 0.0 and all(abs(b) < 5 for b in stacker.bias)


def test_too_few_validation_cases_are_not_stacked_unless_asked():
    model, tfidf, truth = decision_data("tfidf")
    few = stacking_decision(model[:6], tfidf[:6], truth[:6], seed=1, forced=False)
    assert not few["stack"] and "too few" in few["reason"]
    assert stacking_decision(model[:6], tfidf[:6], truth[:6], seed=1, forced=True)["stack"]


def test_the_stacker_leans_on_the_half_that_knows():
    model, tfidf, truth = decision_data("tfidf", seed=2)
    stacker = Stacker.fit(model, tfidf, truth)
    assert stacker.w_tfidf > 3 * abs(stacker.w_model)
    assert Stacker.from_dict(json.loads(json.dumps(stacker.to_dict()))) == stacker


def test_auto_records_its_stacking_decision(tmp_path, tiny_base_dir, tiny_config):
    data = write_csv(tmp_path / "cases.csv", synthetic_rows(120, seed=5))
    config = dataclasses.replace(tiny_config, recipe="auto", max_epochs=1, min_epochs=1,
                                 max_steps=4)
    record = train_and_save(DatasetSpec("cases", data), ModelRegistry(tmp_path / "home"),
                            config, base_dir=tiny_base_dir)
    card = json.loads((Path(record.path) / "model_card.json").read_text())
    decision = card["training"]["stacking"]
    assert set(decision["validation_macro_f1"]) == {"encoder", "stacked_out_of_fold"}
    assert (Path(record.path) / STACKING_FILE).exists() == decision["stack"]
    assert Classifier.load(Path(record.path)).predict("awful rash").label in card["labels"]


@pytest.fixture(scope="module")
def stacked_model(tmp_path_factory, tiny_base_dir, tiny_config) -> Path:
    root = tmp_path_factory.mktemp("stacked")
    data = write_csv(root / "cases.csv", synthetic_rows(30, seed=6))
    config = dataclasses.replace(tiny_config, recipe="stacked", max_epochs=2, min_epochs=1)
    return Path(train_and_save(DatasetSpec("cases", data), ModelRegistry(root / "home"),
                               config, base_dir=tiny_base_dir).path)
