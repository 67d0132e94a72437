"""The sampled estimators and the amortized explainer on the tiny trained model: efficiency,
determinism under a seed, standard errors, settledness, exact values for short texts, and the
explainer kept beside its model (signed, refused when changed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explainers import estimators
from explainers.amortized_store import fit_explainer, load_explainer, save_explainer
from explainers.attribution import explain
from explainers.types import EFFICIENCY_TOLERANCE, Attribution
from models.classifier import Classifier
from models.data import load_demo
from models.errors import DataError, ModelIntegrityError
from models.progress import CancelFlag, Cancelled
from models.registry import ModelRegistry

TEXT = ("The medicine was awful and I got a terrible rash on my arms, but later the relief "
        "was great and the nurse was kind!")


@pytest.fixture(scope="module")
def classifier(trained_home):
    return Classifier.load(ModelRegistry(trained_home).active_path())


@pytest.fixture(scope="module")
def explainer(classifier):
    texts = [t for t in load_demo()[0][0].texts if 8 < len(t.split()) < 40][:24]
    return fit_explainer(classifier, texts, max_texts=24)


def test_auto_refines_the_partition_pass_with_errors_and_settledness(classifier):
    updates = []
    result = explain(classifier, TEXT, on_update=updates.append, with_checks=False)
    assert result.method == "refined" and result.final
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE
    assert all(f.errors is not None and f.errors[result.explained_class] >= 0
               for f in result.features)
    assert result.uncertainty is not None and result.uncertainty.kind == "bootstrap"
    assert result.uncertainty.stopped in ("settled", "budget")
    assert len(result.uncertainty.top) == 5
    assert updates[0].estimator.startswith("shap Partition") and not updates[0].final
    assert result.first_answer is not None and -1 <= result.first_answer.spearman <= 1
    assert result.words_evaluated > 0
    assert result.model_calls <= 2 * len(result.features) + 2 + result.budget + 2


def test_same_seed_same_values_other_seed_other_values(classifier):
    first = explain(classifier, TEXT, method="kernel", seed=3, with_checks=False)
    again = explain(classifier, TEXT, method="kernel", seed=3, with_checks=False)
    other = explain(classifier, TEXT, method="kernel", seed=4, with_checks=False)
    assert first.to_dict()["features"] == again.to_dict()["features"]
    assert first.uncertainty == again.uncertainty
    assert not np.allclose(first.values_for(first.label), other.values_for(first.label))
    assert first.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_short_texts_get_exact_values(classifier):
    text = "the nurse was kind but the rash was awful"
    result = explain(classifier, text, with_checks=False)
    assert result.method == "exact" and result.uncertainty.kind == "exact"
    assert all(f.errors[result.label] == 0 for f in result.features)
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE
    # The same values as shap's Permutation explainer converges to: checked against the
    # brute-force definition on the same game.
    from explainers.model_function import CachedModelFunction

    game = estimators.WordGame(CachedModelFunction(classifier), text)
    column = classifier.labels.index(result.label)
    brute = np.zeros(game.n)
    import itertools
    import math

    for order in itertools.permutations(range(game.n), game.n) if game.n <= 7 else []:
        mask = np.zeros(game.n, bool)
        before = game.values(mask)[0, column]
        for i in order:
            mask[i] = True
            after = game.values(mask)[0, column]
            brute[i] += after - before
            before = after
    if game.n <= 7:
        assert np.allclose(result.values_for(result.label), brute / math.factorial(game.n),
                           atol=1e-6)


def test_one_word_is_exact(classifier):
    result = explain(classifier, "awful")
    assert result.method == "exact" and len(result.features) == 1
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_cancel_stops_the_rounds(classifier):
    cancel = CancelFlag()
    seen = []

    def update(attribution):
        seen.append(attribution)
        cancel.cancel()  # after the first answer

    with pytest.raises(Cancelled):
        explain(classifier, TEXT, method="refined", on_update=update, cancel=cancel,
                stop_when_settled=False, budget=400)
    assert seen and not seen[0].final


def test_bad_requests_say_what_to_do(classifier):
    with pytest.raises(ValueError, match="only available with the partition"):
        explain(classifier, TEXT, method="refined", masking="mask")
    with pytest.raises(DataError, match="at most 20 words"):
        explain(classifier, TEXT, method="exact")
    with pytest.raises(DataError, match="no amortized explainer"):
        explain(classifier, TEXT, method="amortized")
    with pytest.raises(DataError, match="empty"):
        explain(classifier, "   ")


def test_records_round_trip_with_errors_and_uncertainty(classifier):
    result = explain(classifier, TEXT, with_checks=True)
    data = json.loads(json.dumps(result.to_dict()))
    back = Attribution.from_dict(data)
    assert back.to_dict() == result.to_dict()
    assert back.uncertainty == result.uncertainty and back.features == result.features
    old = {k: v for k, v in data.items()
           if k not in ("estimator", "words_evaluated", "uncertainty", "first_answer")}
    old["features"] = [{k: v for k, v in f.items() if k != "errors"} for f in data["features"]]
    before = Attribution.from_dict(old)  # a record from before estimators had errors
    assert before.uncertainty is None and before.features[0].errors is None
    # A record from before the settledness rule was kept in it: judged at 90 %.
    unruled = {**data, "uncertainty": {k: v for k, v in data["uncertainty"].items()
                                       if k != "share"}}
    assert data["uncertainty"]["share"] == 0.9
    assert Attribution.from_dict(unruled).uncertainty.share == 0.9


def test_the_amortized_explainer_answers_at_once_and_efficiently(classifier, explainer):
    assert explainer.record["targets"]["texts"] == 24 and len(explainer.heads) == 5
    forced = explain(classifier, TEXT, method="amortized", amortized=explainer,
                     with_checks=False)
    assert forced.method == "amortized" and forced.model_calls <= 1
    assert forced.efficiency_gap() < EFFICIENCY_TOLERANCE
    assert forced.uncertainty.kind == "heads"
    assert all(f.errors[forced.label] >= 0 for f in forced.features)
    again = explain(classifier, TEXT, method="amortized", amortized=explainer,
                    with_checks=False)
    assert again.to_dict()["features"] == forced.to_dict()["features"]


def test_auto_uses_the_explainer_only_when_its_gate_passed(classifier, explainer):
    from dataclasses import replace

    on, off = replace(explainer, enabled=True), replace(explainer, enabled=False)
    updates = []
    refined = explain(classifier, TEXT, amortized=on, on_update=updates.append,
                      with_checks=False)
    assert updates[0].method == "amortized-refined" and updates[0].estimator.startswith(
        "amortized")
    assert refined.first_answer.estimator.startswith("amortized")
    fast = explain(classifier, TEXT, amortized=on, refine=False, with_checks=False)
    assert fast.method == "amortized"
    assert explain(classifier, TEXT, amortized=off, refine=False).method == "partition"


def test_the_explainer_is_kept_signed_and_refused_when_changed(tmp_path, classifier,
                                                                explainer):
    import shutil

    from app.accounts.installation import installation_key
    from models.manifest_signature import EXPLAINERS_DIR, ManifestTrust, SigningKey

    model_dir = tmp_path / classifier.model_id
    shutil.copytree(classifier.path, model_dir)
    key = installation_key(tmp_path / "config")
    trust = ManifestTrust.of([key.public_key], SigningKey(key.private, key.label))
    directory = save_explainer(explainer, model_dir, trust)
    assert directory.parent.name == EXPLAINERS_DIR
    loaded = load_explainer(model_dir, classifier.model_id, classifier.labels, trust=trust)
    assert loaded.explainer_id == directory.name and len(loaded.heads) == 5
    # Its inputs: the last layer's word and text states, and every lower layer's word states.
    assert loaded.layers == explainer.layers == (0, 1) and loaded.record["layers"] == [0, 1]
    probs = classifier.probabilities([TEXT])[0]
    assert np.allclose(loaded.values(classifier, TEXT, probs)[0],
                       explainer.values(classifier, TEXT, probs)[0])
    with pytest.raises(ModelIntegrityError, match="labels"):
        load_explainer(model_dir, classifier.model_id, list(reversed(classifier.labels)),
                       trust=trust)
    with open(directory / "head.safetensors", "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00" * 8)
    with pytest.raises(ModelIntegrityError):
        load_explainer(model_dir, classifier.model_id, classifier.labels, trust=trust)


def test_an_explainer_saved_before_lower_layers_were_inputs_still_answers(tmp_path,
                                                                         classifier):
    """Format 1 (no "layers" in its record): the last layer's states alone, as it was fitted."""
    import shutil
    from dataclasses import replace

    from explainers import amortized

    texts = [t for t in load_demo()[0][0].texts if 8 < len(t.split()) < 40][:24]
    states = amortized.word_states(classifier, texts)
    assert states[0].features.shape[1] == 2 * classifier.model.config.hidden_size
    targets = amortized.shapley_targets(classifier, texts)
    fit = amortized.fit_heads(states, targets)
    fitted = fit_explainer(classifier, texts, max_texts=24)
    old_record = {k: v for k, v in fitted.record.items() if k != "layers"} | {"format": 1}
    old = replace(fitted, heads=fit.heads, record=old_record, layers=())
    model_dir = tmp_path / classifier.model_id
    shutil.copytree(classifier.path, model_dir)
    save_explainer(old, model_dir)
    loaded = load_explainer(model_dir, classifier.model_id, classifier.labels)
    assert loaded.layers == ()
    probs = classifier.probabilities([TEXT])[0]
    values, _ = loaded.values(classifier, TEXT, probs)
    assert np.allclose(values.sum(0) + loaded.base, probs, atol=1e-6)


def test_too_few_texts_are_refused(classifier):
    with pytest.raises(DataError, match="at least 20 training texts"):
        fit_explainer(classifier, ["one text", "  "] * 5)
