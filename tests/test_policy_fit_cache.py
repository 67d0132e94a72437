"""A loaded escalation policy reuses its kept fit only while its inputs are unchanged, and
decides exactly as a refit policy does, without importing MAPIE or scikit-learn."""

import json
import subprocess
import sys

import numpy as np
import pytest

from models import escalation
from models.classifier import Classifier
from models.escalation import (
    FITTED_FILE,
    EscalationSettings,
    fit_policy,
    load_policy,
    policy_dirs,
    save_policy,
)
from models.ood import NeighbourDistance
from models.registry import ModelRegistry
from models.risk_control import MAPIE_EPSILON, ConformalSets
from tests.helpers.data import PROJECT_ROOT, synthetic_rows


def unit_rows(rng, n, dim=384):
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_mapies_tolerance_is_the_one_used():
    from mapie._machine_precision import EPSILON

    assert EPSILON == MAPIE_EPSILON


@pytest.mark.parametrize("n_classes,n", [(3, 188), (5, 40), (2, 1500)])
def test_lac_sets_from_the_kept_quantile_are_mapies(n_classes, n):
    rng = np.random.default_rng(n)
    probs = rng.dirichlet(np.ones(n_classes), size=n)
    truth = rng.integers(0, n_classes, n)
    sets = ConformalSets(probs, truth, 0.1, "lac")
    restored = ConformalSets.from_state(json.loads(json.dumps(sets.state())))
    new = rng.dirichlet(np.ones(n_classes) * 0.5, size=2000)
    # and cases right at the edge of the quantile, where MAPIE's tolerance decides
    edge = np.tile(new[:20], (1, 1))
    edge[:, 0] = 1 - sets.quantile + np.linspace(-2e-8, 2e-8, 20)
    edge[:, 1:] = (1 - edge[:, :1]) * edge[:, 1:] / edge[:, 1:].sum(1, keepdims=True)
    for cases in (new, edge, probs):
        _, theirs = sets._mapie.predict_set(cases)
        np.testing.assert_array_equal(restored.predict(cases), theirs[:, :, 0].astype(bool))
        np.testing.assert_array_equal(sets.predict(cases), theirs[:, :, 0].astype(bool))


def test_unnormalised_probabilities_are_refused_as_mapie_refuses_them():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=50)
    sets = ConformalSets(probs, rng.integers(0, 3, 50), 0.1, "lac")
    with pytest.raises(AssertionError, match="not equal to one"):
        sets.predict(probs * 1.1)


@pytest.mark.parametrize("n", [3, 188, 1500])
def test_neighbour_distance_is_scikit_learns(n):
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(n)
    reference, queries = unit_rows(rng, n), unit_rows(rng, 300)
    reference[-1] = reference[0]  # a duplicate
    queries[0] = reference[1]  # a calibration case itself
    ours = NeighbourDistance(reference)
    index = NearestNeighbors(n_neighbors=ours.k + 1).fit(reference)
    distances, _ = index.kneighbors(reference, n_neighbors=ours.k + 1)
    np.testing.assert_array_equal(ours.calibration_scores,
                                  np.asarray(distances[:, ours.k], float) ** 2 / 2)
    distances, _ = index.kneighbors(queries, n_neighbors=ours.k)
    np.testing.assert_array_equal(ours.score(queries),
                                  np.asarray(distances[:, ours.k - 1], float) ** 2 / 2)


@pytest.fixture()
def classifier(home):
    return Classifier.load(ModelRegistry(home).active_path())


@pytest.fixture()
def saved(classifier):
    """A certified policy on 300 reviewed cases, saved beside the model."""
    rows = synthetic_rows(100, seed=5)
    truth = np.array([classifier.labels.index(r["label"]) for r in rows])
    policy = fit_policy(classifier.scores([r["text"] for r in rows]), truth, classifier.labels,
                        classifier.model_id, EscalationSettings(alpha=0.2), "reviewed cases")
    return save_policy(policy, classifier.path)


def load(classifier, directory=None):
    return load_policy(classifier.path, classifier.model_id, classifier.labels, directory)


def decisions(policy, classifier):
    texts = [r["text"] for r in synthetic_rows(30, seed=9)] + ["great", "the the the"]
    scores = classifier.scores(texts)
    return [d.to_dict() for d in policy.decide(scores, classifier.max_length)]


@pytest.fixture()
def refits(monkeypatch):
    calls = []
    real = escalation.certify_threshold

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(escalation, "certify_threshold", counting)
    return calls


def test_a_saved_policy_loads_from_its_kept_fit_and_decides_as_a_refit(classifier, saved,
                                                                      refits):
    assert (saved / FITTED_FILE).is_file()
    kept = load(classifier, saved)
    assert refits == []
    (saved / FITTED_FILE).unlink()
    refit = load(classifier, saved)
    assert refits == [1] and (saved / FITTED_FILE).is_file()  # and kept again
    assert kept.threshold == refit.threshold is not None
    assert kept.to_record() == refit.to_record()
    assert decisions(kept, classifier) == decisions(refit, classifier)
    np.testing.assert_array_equal(kept.sets.predict(kept.data.probabilities),
                                  refit.sets.predict(refit.data.probabilities))


def test_changed_code_or_libraries_refit(classifier, saved, refits, monkeypatch):
    real = escalation.fit_key
    monkeypatch.setattr(escalation, "fit_key",
                        lambda digests: {**real(digests), "libraries": {"mapie": "99"}})
    load(classifier, saved)
    assert refits == [1]
    assert json.loads((saved / FITTED_FILE).read_text())["key"]["libraries"] == {"mapie": "99"}


def test_a_kept_fit_that_disagrees_with_the_record_is_not_believed(classifier, saved, refits):
    kept = json.loads((saved / FITTED_FILE).read_text())
    kept["threshold_test"]["threshold"] = 0.5
    (saved / FITTED_FILE).write_text(json.dumps(kept))
    policy = load(classifier, saved)
    assert refits == [1] and policy.threshold != 0.5


def test_a_damaged_kept_fit_only_costs_a_refit(classifier, saved, refits):
    (saved / FITTED_FILE).write_text("{")
    assert load(classifier, saved).threshold is not None
    assert refits == [1]


def test_aps_policies_are_refitted_by_mapie(classifier, refits):
    # (MAPIE's APS scores break ties at random, so an APS refit may move a set: not kept.)
    rows = synthetic_rows(40, seed=6)
    truth = np.array([classifier.labels.index(r["label"]) for r in rows])
    policy = fit_policy(classifier.scores([r["text"] for r in rows]), truth, classifier.labels,
                        classifier.model_id, EscalationSettings(set_score="aps"), "reviewed")
    directory = save_policy(policy, classifier.path)
    assert not (directory / FITTED_FILE).exists()
    refits.clear()
    loaded = load(classifier, directory)
    assert refits == [1] and loaded.sets.score == "aps" and loaded.sets.quantile is None
    assert not (directory / FITTED_FILE).exists()


def test_deciding_a_case_imports_neither_mapie_nor_scikit_learn(classifier, saved):
    assert policy_dirs(classifier.path)[-1] == saved
    script = (
        "import sys\n"
        "from models.classifier import Classifier\n"
        "from models.escalation import load_policy, predict_and_decide\n"
        f"classifier = Classifier.load({str(classifier.path)!r})\n"
        "policy = load_policy(classifier.path, classifier.model_id, classifier.labels)\n"
        "predict_and_decide(classifier, policy, ['great relief'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'mapie', 'sklearn', 'pandas'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
