"""The escalation policy on a real (tiny) trained model: fitted at training, refitted by
`calibrate`, shown by `evaluate` and `predict`, and refused when it does not fit the model."""

import json

import numpy as np
import pytest

from models.classifier import Classifier
from models.errors import DataError, ModelIntegrityError
from models.escalation import (
    EscalationSettings,
    fit_policy,
    load_policy,
    policy_dirs,
    policy_history,
    predict_and_decide,
    save_policy,
)
from models.registry import ModelRegistry
from tests.helpers.cli import run_cli
from tests.helpers.data import synthetic_rows, write_csv


@pytest.fixture()
def classifier(home):
    return Classifier.load(ModelRegistry(home).active_path())


def reviewed_cases(n_per_class: int = 60, seed: int = 11):
    rows = synthetic_rows(n_per_class, seed)
    return [r["text"] for r in rows], [r["label"] for r in rows]


def fitted(classifier, settings=None, n_per_class: int = 60):
    texts, labels = reviewed_cases(n_per_class)
    truth = np.array([classifier.labels.index(y) for y in labels])
    return fit_policy(classifier.scores(texts), truth, classifier.labels, classifier.model_id,
                      settings or EscalationSettings(alpha=0.2), "reviewed cases")


def test_training_fits_a_policy_and_the_card_keeps_its_evidence(classifier):
    (directory,) = policy_dirs(classifier.path)
    card = json.loads((classifier.path / "model_card.json").read_text())
    evidence = card["escalation"]
    assert set(evidence) >= {"coverage", "auto_error", "auto_error_ci", "escalated_error",
                             "alpha", "delta", "n_calibration", "n_test", "aurc",
                             "set_coverage", "set_size_mean"}
    assert evidence["n_calibration"] == 18  # 15 % of 120 synthetic rows: too few to certify
    assert "too few" in evidence["guarantee"] and evidence["coverage"] == 0
    assert "## Escalation (test split)" in (classifier.path / "MODEL_CARD.md").read_text()
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    assert policy.policy_id == directory.name and policy.threshold is None


def test_too_few_calibration_cases_escalate_everything(classifier):
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    ((_, decision),) = predict_and_decide(classifier, policy, ["great relief works"])
    assert decision.decision == "escalate" and "uncertified" in decision.reason_codes
    assert "too few" in decision.guarantee


def test_reviewed_cases_certify_a_threshold_and_the_old_policy_is_kept(classifier):
    policy = fitted(classifier)
    assert policy.threshold is not None and policy.n_calibration == 180
    save_policy(policy, classifier.path)
    history = policy_history(classifier.path)
    assert len(history) == 2 and history[-1]["threshold"] == policy.threshold
    loaded = load_policy(classifier.path, classifier.model_id, classifier.labels)
    assert loaded.policy_id == history[-1]["policy_id"]
    pairs = predict_and_decide(classifier, loaded, ["great wonderful relief works excellent"])
    ((prediction, decision),) = pairs
    assert prediction.prediction_set == decision.prediction_set
    if decision.auto:
        assert decision.reasons == () and decision.confidence >= decision.threshold
    assert "at most 20% are wrong, with 90% confidence" in decision.guarantee


def test_every_reason_is_given(classifier):
    policy = fitted(classifier, EscalationSettings(alpha=0.2, always_review=("negative",)))
    from models.windows import READ_LIMIT_TOKENS

    long_text = "awful terrible rash pain " * (READ_LIMIT_TOKENS // 4)  # past the read limit
    (_, decision), = predict_and_decide(classifier, policy, [long_text])
    assert decision.label == "negative"
    assert {"truncated", "always_review"} <= set(decision.reason_codes)
    assert any("longer than the model reads" in r for r in decision.reasons)


@pytest.mark.parametrize("settings, message", [
    (EscalationSettings(alpha=1.5), "alpha must be between 0 and 1"),
    (EscalationSettings(delta=0.0), "delta must be between 0 and 1"),
    (EscalationSettings(always_review=("urgent",)), "not the model's labels"),
])
def test_bad_settings_are_refused(classifier, settings, message):
    with pytest.raises(DataError, match=message):
        fitted(classifier, settings)


def test_single_class_calibration_is_refused(classifier):
    texts = ["awful rash pain"] * 30
    with pytest.raises(DataError, match="Every calibration case has the label 'negative'"):
        fit_policy(classifier.scores(texts), np.zeros(30, int), classifier.labels,
                   classifier.model_id)


def test_a_policy_for_other_labels_or_edited_is_refused(classifier):
    with pytest.raises(ModelIntegrityError, match="Refit it"):
        load_policy(classifier.path, classifier.model_id, ["a", "b", "c"])
    (directory,) = policy_dirs(classifier.path)
    record = json.loads((directory / "policy.json").read_text())
    record["settings"]["alpha"] = 0.5
    (directory / "policy.json").write_text(json.dumps(record))
    with pytest.raises(ModelIntegrityError, match="changed after it was written"):
        load_policy(classifier.path, classifier.model_id, classifier.labels)


def test_calibrate_evaluate_and_predict_from_the_command_line(home, tmp_path):
    texts, labels = reviewed_cases()
    data = write_csv(tmp_path / "reviewed.csv",
                     [{"text": t, "label": y} for t, y in zip(texts, labels, strict=True)])
    out = json.loads(run_cli(home, "calibrate", "--data", str(data), "--alpha", "0.2",
                             "--json").stdout)
    assert out["threshold"] is not None and out["n_calibration"] == 180
    plot = tmp_path / "rc.png"
    evidence = json.loads(run_cli(home, "evaluate", "--json", "--plot", str(plot)).stdout)
    assert set(evidence) >= {"coverage", "auto_error", "auto_error_ci", "escalated_error",
                             "alpha", "delta", "n_calibration", "n_test", "aurc",
                             "set_coverage", "set_size_mean"}
    assert evidence["alpha"] == 0.2 and evidence["n_test"] == 18
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    answer = json.loads(run_cli(home, "predict", "great relief, it works", "--json").stdout)
    assert isinstance(answer["prediction_set"], list)
    escalation = answer["escalation"]
    assert escalation["decision"] in {"auto", "escalate"}
    assert set(escalation) >= {"reasons", "alpha", "delta", "threshold", "guarantee"}
    bad = run_cli(home, "calibrate", "--alpha", "2", check=False)
    assert bad.returncode == 2 and "alpha must be between 0 and 1" in bad.stderr
