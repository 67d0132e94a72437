import numpy as np

from models.calibration import calibrated_probabilities, fit_temperature
from models.metrics import classification_report, expected_calibration_error


def sample_with_temperature(true_t: float, n: int = 4000, seed: int = 0):
    """Labels drawn from softmax(z / true_t): the temperature that fits them is true_t."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 3))
    probs = calibrated_probabilities(logits, true_t)
    y = np.array([rng.choice(3, p=p) for p in probs])
    return logits, y


def test_temperature_recovers_the_true_value():
    for true_t in (0.5, 2.0):
        logits, y = sample_with_temperature(true_t)
        assert abs(fit_temperature(logits, y) - true_t) / true_t < 0.1


def test_temperature_scaling_reduces_ece_of_overconfident_logits():
    logits, y = sample_with_temperature(2.5, seed=1)
    raw = calibrated_probabilities(logits, 1.0)
    fitted = calibrated_probabilities(logits, fit_temperature(logits, y))
    assert expected_calibration_error(raw, y) > 0.1
    assert expected_calibration_error(fitted, y) < 0.03


def test_temperature_never_changes_the_predicted_label():
    logits, _ = sample_with_temperature(1.0, n=200)
    for t in (0.3, 1.0, 4.0):
        assert (calibrated_probabilities(logits, t).argmax(1) == logits.argmax(1)).all()


def test_ece_by_hand():
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1, 0, 0])
    # Bin 0.9: accuracy 0.5 vs confidence 0.9; bin 0.6: accuracy 1.0 vs 0.6.
    assert np.isclose(expected_calibration_error(probs, y), 0.5 * 0.4 + 0.5 * 0.4)


def test_classification_report_per_class():
    probs = np.eye(3)[[0, 1, 2, 2]]
    report = classification_report(probs, np.array([0, 1, 2, 1]), ["a", "b", "c"])
    assert report["accuracy"] == 0.75
    assert report["per_class"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3,
                                         "support": 2}
