"""The SetFit recipe (models/setfit_recipe.py): chosen by the data size, trained with the real
``setfit`` package on the tiny random BERT, saved as one transformers model that predicts
exactly what SetFit's encoder and logistic-regression head predict, and read by the app like a
fine-tuned model (windows, temperature, policy, quantisation)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from models.classifier import Classifier
from models.errors import DataError
from models.progress import CancelFlag, Cancelled
from models.recipes import FINE_TUNE, SETFIT, SETFIT_BELOW_PER_CLASS, choose_recipe
from models.registry import ModelRegistry
from models.sentence_head import SentenceClassifier
from models.setfit_recipe import _sentence_body, as_sentence_classifier
from models.train_job import DatasetSpec, train_and_save
from tests.helpers.data import synthetic_rows, write_csv


@pytest.fixture(scope="module")
def setfit_config(tiny_config):
    # The tiny random encoder needs the tiny fine-tune's large steps to learn anything.
    return dataclasses.replace(tiny_config, recipe="auto", setfit_iterations=5,
                               setfit_learning_rate=tiny_config.learning_rate)


def test_the_recipe_follows_the_data_size_unless_one_is_asked_for():
    few = ["a", "b"] * (SETFIT_BELOW_PER_CLASS - 1)
    many = ["a", "b"] * SETFIT_BELOW_PER_CLASS
    assert choose_recipe("auto", few)[0] == SETFIT
    assert choose_recipe("auto", many)[0] == FINE_TUNE
    assert choose_recipe("fine-tune", few)[0] == FINE_TUNE
    assert "99 training examples a class" in choose_recipe("auto", few)[1]
    with pytest.raises(DataError, match="Unknown training recipe 'magic'"):
        choose_recipe("magic", few)


def test_the_saved_model_predicts_what_setfit_predicts(tiny_base_dir):
    """The conversion is exact: softmax of the saved model's logits is SetFit's head's
    predict_proba on SetFit's own embeddings."""
    rows = synthetic_rows(10, seed=3)
    texts, labels = [r["text"] for r in rows], sorted({r["label"] for r in rows})
    setfit_model = _sentence_body(tiny_base_dir, 32)
    embeddings = setfit_model.model_body.encode(texts)
    setfit_model.model_head.fit(embeddings, [labels.index(r["label"]) for r in rows])
    expected = setfit_model.model_head.predict_proba(embeddings)
    model = as_sentence_classifier(setfit_model, tiny_base_dir, labels)
    from models.inference import encode, forward_logits

    tokenizer = setfit_model.model_body.tokenizer
    logits = forward_logits(model, encode(tokenizer, texts, 32, "first"), tokenizer.pad_token_id)
    got = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(got / got.sum(1, keepdims=True), expected, atol=1e-4)


def test_a_small_training_set_trains_setfit_and_the_app_reads_it(tmp_path, tiny_base_dir,
                                                                 setfit_config):
    data = write_csv(tmp_path / "few.csv", synthetic_rows(30, seed=5))
    stages = []
    record = train_and_save(DatasetSpec("few", data), ModelRegistry(tmp_path / "home"),
                            setfit_config, progress=lambda p: stages.append(p.stage),
                            base_dir=tiny_base_dir)
    card = json.loads((Path(record.path) / "model_card.json").read_text())
    assert card["training"]["recipe"] == SETFIT
    assert "19 training examples a class" in card["training"]["recipe_reason"]
    assert "training (SetFit)" in stages
    markdown = (Path(record.path) / "MODEL_CARD.md").read_text()
    assert "): contrastive pairs on the encoder" in markdown
    assert reloaded_accuracy(Path(record.path)) == pytest.approx(
        card["metrics"]["test"]["accuracy"])
    classifier = Classifier.load(Path(record.path))
    assert isinstance(classifier.model, SentenceClassifier)
    # The words carry the class: a working SetFit run beats chance (1/3), by the app's test.
    assert card["chance_test"]["passed"] and record.active
    long_text = " ".join(["filler words about nothing"] * 40) + " wonderful relief works great"
    one = classifier.predict(long_text)
    assert one.windows > 1 and not one.truncated
    assert abs(sum(one.probabilities.values()) - 1) < 1e-6
    quick = classifier.quantized().predict(long_text)
    assert quick.label in card["labels"]


def test_a_cancelled_setfit_training_leaves_nothing(tmp_path, tiny_base_dir, setfit_config):
    data = write_csv(tmp_path / "few.csv", synthetic_rows(20, seed=5))
    cancel = CancelFlag()

    def progress(p):
        if p.stage == "training (SetFit)" and p.done >= 1:
            cancel.cancel()

    registry = ModelRegistry(tmp_path / "home")
    with pytest.raises(Cancelled):
        train_and_save(DatasetSpec("few", data), registry, setfit_config, progress=progress,
                       cancel=cancel, base_dir=tiny_base_dir)
    assert registry.records() == []
    assert not list(tmp_path.glob("**/checkpoints"))


def reloaded_accuracy(path: Path) -> float:
    """The loaded model's accuracy on the test split kept with it: equal to the card's only
    if the saved weights were read back (not re-initialised)."""
    from models.train_job import read_held_out

    texts, labels = read_held_out(path, "test")
    answers = Classifier.load(path).predict_batch(texts)
    return sum(a.label == y for a, y in zip(answers, labels, strict=True)) / len(labels)


def encoder_folder(path: Path, model_type: str = "bert", modules: list[str] | None = None,
                   **config) -> Path:
    """A base folder as the recipes read it before loading: config.json (and modules.json)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type, **config}))
    if modules is not None:
        (path / "modules.json").write_text(json.dumps(
            [{"idx": i, "name": str(i), "path": "" if i == 0 else f"{i}_{kind}",
              "type": f"sentence_transformers.models.{kind}"} for i, kind in enumerate(modules)]))
    return path


def test_a_base_setfit_cannot_use_sends_auto_to_the_fine_tune_and_is_refused_by_name(tmp_path):
    few = ["a", "b"] * 10
    dense = encoder_folder(tmp_path / "dense", modules=["Transformer", "Pooling", "Dense"])
    recipe, why = choose_recipe("auto", few, dense)
    assert recipe == FINE_TUNE and "Dense" in why
    with pytest.raises(DataError, match="needs a sentence encoder"):
        choose_recipe("setfit", few, dense)
    roberta = encoder_folder(tmp_path / "roberta", "roberta")
    assert choose_recipe("auto", few, roberta)[0] == FINE_TUNE
    for recipe in ("setfit", "ensemble"):
        with pytest.raises(DataError, match="saves BERT encoders only"):
            choose_recipe(recipe, few, roberta)
    assert choose_recipe("fine-tune", few, roberta)[0] == FINE_TUNE
    plain = encoder_folder(tmp_path / "plain")  # no modules.json: SetFit adds mean pooling
    assert choose_recipe("auto", few, plain)[0] == SETFIT


def test_a_casewise_setfit_or_ensemble_model_is_no_base_to_train_from(tmp_path):
    for kind in ("sentence-linear", "seed-ensemble"):
        base = encoder_folder(tmp_path / kind, casewise_head=kind)
        for recipe in ("auto", "fine-tune", "setfit", "ensemble"):
            with pytest.raises(DataError, match=f"is a Casewise {kind} model"):
                choose_recipe(recipe, ["a", "b"] * 10, base)


def test_setfit_trains_on_the_windows_the_app_reads(tiny_base_dir, tiny_config):
    from transformers import AutoTokenizer

    from models.setfit_recipe import windows_of

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_dir)
    long_text = " ".join(f"word{i}" for i in range(200))
    texts, labels = windows_of(tokenizer, ["short one", long_text], ["a", "b"], tiny_config)
    assert texts[0] == "short one" and labels[0] == "a"
    assert len(texts) > 3 and set(labels[1:]) == {"b"}
    assert "word199" in texts[-1].replace(" ", "")  # the end of the text is trained on too
