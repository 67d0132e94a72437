"""shap without numba (explainers.jit_free): the same numbers as shap's compiled helpers."""

import numpy as np
import pytest
import scipy.cluster.hierarchy

import explainers.attribution as attribution_module
from explainers import jit_free
from explainers.attribution import explain, make_masker
from models.classifier import Classifier
from models.registry import ModelRegistry

TEXTS = [
    "two words",
    "The medicine was awful, I got a terrible rash. Later the relief was great!",
    " ".join(f"word{i}" for i in range(250)) + ".",
]


def make_masker_tree(text: str) -> np.ndarray:
    class _Tok:
        mask_token = "[MASK]"

    class _Clf:
        tokenizer = _Tok()

    return make_masker(_Clf(), "delete").clustering(text)


def random_trees():
    rng = np.random.default_rng(0)
    for n in (2, 3, 17, 120):
        yield scipy.cluster.hierarchy.linkage(rng.normal(size=(n, 3)), "average")
    for text in TEXTS:
        yield make_masker_tree(text)


@pytest.mark.parametrize("tree", list(random_trees()), ids=lambda t: f"{len(t) + 1}-leaves")
def test_members_matrix_is_shaps_make_masks(tree):
    ours = jit_free.members_matrix(tree)
    theirs = jit_free.compiled("shap.utils._masked_model", "make_masks")(tree)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours.indptr, theirs.indptr)
    assert np.array_equal(ours.indices, theirs.indices)
    assert (ours != theirs).nnz == 0


@pytest.mark.parametrize("tree", list(random_trees()), ids=lambda t: f"{len(t) + 1}-leaves")
@pytest.mark.parametrize("outputs", [(), (3,)], ids=["one-output", "three-outputs"])
def test_spread_credit_is_shaps_lower_credit(tree, outputs):
    rng = np.random.default_rng(1)
    n_leaves = len(tree) + 1
    start = rng.normal(size=(2 * n_leaves - 1, *outputs))
    ours, theirs = start.copy(), start.copy()
    # shap passes 0 for several outputs; numba types one output only with a float
    value = 0.0 if not outputs else 0
    jit_free.spread_credit(len(start) - 1, value, n_leaves, ours, tree)
    jit_free.compiled("shap.explainers._partition", "lower_credit")(
        len(start) - 1, value, n_leaves, theirs, tree)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rows", [1, 4])
@pytest.mark.parametrize("outputs", [(), (3,)], ids=["one-output", "three-outputs"])
@pytest.mark.parametrize("all_vary", [False, True], ids=["some-masks-vary", "all-vary"])
def test_outputs_per_mask_is_shaps_build_fixed_output(rows, outputs, all_vary):
    import shap

    rng = np.random.default_rng(2)
    n_masks = 40
    varying = rng.random((n_masks, rows)) < 0.6
    varying[0] = True
    varying[5] = False  # a mask that changes nothing repeats the one before
    if all_vary:
        varying[:] = True  # a text: one row, every mask changes it
    counts = varying.sum(1)
    positions = np.concatenate(([0], np.cumsum(counts)))
    model_out = rng.random((positions[-1], *outputs)).astype(np.float32)
    results = []
    for build in (jit_free.outputs_per_mask,
                  jit_free.compiled("shap.utils._masked_model", "_build_fixed_output")):
        averaged = np.zeros((n_masks, *outputs))
        last = np.zeros((rows, *outputs))
        args = (averaged, last, model_out, positions, varying, counts)
        if build is jit_free.outputs_per_mask:
            build(*args)
        else:
            build(*args, shap.links.identity, None)
        results.append((averaged, last))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_switches_are_installed_once_and_only_act_inside_jit_free(monkeypatch):
    import shap.explainers._partition as partition

    switch = partition.make_masks
    jit_free.install()
    assert partition.make_masks is switch
    assert jit_free.compiled("shap.explainers._partition", "make_masks") is not switch
    ours = []
    monkeypatch.setattr(jit_free, "members_matrix",
                        lambda tree: ours.append(tree) or "ours")
    tree = make_masker_tree("a few words")
    assert not isinstance(partition.make_masks(tree), str)  # outside: shap's compiled one
    with jit_free.jit_free():
        assert partition.make_masks(tree) == "ours"
    assert not isinstance(partition.make_masks(tree), str)
    assert len(ours) == 1


def test_other_links_keep_shaps_compiled_function(monkeypatch):
    import shap
    import shap.utils._masked_model as masked_model

    monkeypatch.setattr(jit_free, "_plain_outputs", lambda *args: pytest.fail("not ours"))
    averaged, last = np.zeros((1, 2)), np.zeros((1, 2))
    with jit_free.jit_free():
        masked_model._build_fixed_output(averaged, last, np.full((1, 2), 0.5), np.array([0, 1]),
                                         np.ones((1, 1), bool), np.array([1]), shap.links.logit,
                                         None)
    np.testing.assert_allclose(averaged, 0.0, atol=1e-12)


@pytest.fixture(scope="module")
def classifier(trained_home):
    return Classifier.load(ModelRegistry(trained_home).active_path())


@pytest.mark.parametrize("method,context", [("partition", "empty"), ("partition", "full"),
                                            ("partition", "both"), ("permutation", "empty")])
def test_explain_gives_the_same_attributions_with_and_without_numba(classifier, monkeypatch,
                                                                     method, context):
    text = TEXTS[1]
    plain = explain(classifier, text, method=method, context=context, with_checks=False)
    monkeypatch.setattr(attribution_module, "SHAP_JIT", True)
    compiled = explain(classifier, text, method=method, context=context, with_checks=False)
    assert plain.model_calls == compiled.model_calls
    for cls in plain.classes:
        np.testing.assert_allclose(plain.values_for(cls), compiled.values_for(cls),
                                   rtol=0, atol=1e-6)
        assert plain.base_values[cls] == pytest.approx(compiled.base_values[cls], abs=1e-6)
