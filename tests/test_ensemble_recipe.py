"""The seed-ensemble recipe (models/ensemble.py, models/recipes.py): three fine-tunes of the
tiny random BERT from consecutive seeds, saved as one model whose logits are the mean of its
members', read by the app as one classifier; a model kind this version does not know is
refused with a message."""

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.classifier import Classifier
from models.ensemble import SeedEnsemble
from models.errors import DataError
from models.model_kinds import model_class
from models.registry import ModelRegistry
from models.train_job import DatasetSpec, train_and_save
from tests.helpers.data import synthetic_rows, write_csv


def test_an_ensemble_is_three_seeds_answering_together(tmp_path, tiny_base_dir, tiny_config):
    data = write_csv(tmp_path / "cases.csv", synthetic_rows(30, seed=4))
    stages, fractions = set(), []

    def progress(p):
        stages.add(p.stage)
        if p.stage.startswith("training"):
            fractions.append(p.fraction)

    config = dataclasses.replace(tiny_config, recipe="ensemble", max_epochs=3, min_epochs=1,
                                 max_steps=6)
    record = train_and_save(DatasetSpec("cases", data), ModelRegistry(tmp_path / "home"),
                            config, progress=progress, base_dir=tiny_base_dir)
    assert {"training (member 1 of 3)", "training (member 3 of 3)"} <= stages
    # One bar for the three members: it never runs backwards and ends full.
    assert all(b >= a for a, b in itertools.pairwise(fractions))
    assert fractions[-1] == pytest.approx(1.0)
    card = json.loads((Path(record.path) / "model_card.json").read_text())
    assert card["training"]["recipe"] == "ensemble"
    assert {row["member"] for row in card["training"]["history"]} == {1, 2, 3}
    markdown = (Path(record.path) / "MODEL_CARD.md").read_text()
    assert "Seed ensemble of 3 fine-tunes (asked for; 19 training examples a class)" in markdown
    assert reloaded_accuracy(Path(record.path)) == pytest.approx(
        card["metrics"]["test"]["accuracy"])
    classifier = Classifier.load(Path(record.path))
    model = classifier.model
    assert isinstance(model, SeedEnsemble) and len(model.members) == 3
    # The members differ (their own seeds) and the ensemble answers with their mean.
    inputs = classifier.tokenizer(["awful rash and pain", "wonderful relief"],
                                  return_tensors="pt", padding=True)
    with torch.inference_mode():
        each = [m(**inputs).logits for m in model.members]
        together = model(**inputs).logits
    assert not torch.allclose(each[0], each[1])
    torch.testing.assert_close(together, torch.stack(each).mean(0))
    prediction = classifier.predict("wonderful relief the medicine works great")
    assert np.isclose(sum(prediction.probabilities.values()), 1.0)
    scores = classifier.scores(["awful rash", "okay mixed"])
    assert scores.embeddings.shape == (2, model.config.hidden_size)


def test_a_model_of_a_kind_this_version_does_not_know_is_refused():
    with pytest.raises(DataError, match="newer Casewise"):
        model_class({"casewise_head": "quantum-forest"})


def reloaded_accuracy(path: Path) -> float:
    """The loaded model's accuracy on the test split kept with it: equal to the card's only
    if the saved weights were read back (not re-initialised)."""
    from models.train_job import read_held_out

    texts, labels = read_held_out(path, "test")
    answers = Classifier.load(path).predict_batch(texts)
    return sum(a.label == y for a, y in zip(answers, labels, strict=True)) / len(labels)
