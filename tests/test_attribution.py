"""Word attributions on the tiny trained model: efficiency, spans, determinism, faults."""

import itertools
import json
import math
import re

import numpy as np
import pytest
import shap

from explainers.attribution import (
    CONTEXTS,
    MaskedText,
    default_budget,
    explain,
    make_masker,
)
from explainers.model_function import CachedModelFunction
from explainers.render import bar_chart, highlighted_html, legend_html
from explainers.types import EFFICIENCY_TOLERANCE
from models.classifier import Classifier
from models.errors import DataError
from models.progress import CancelFlag, Cancelled
from models.registry import ModelRegistry

TEXT = "The medicine was awful, I got a terrible rash. Later the relief was great!"


@pytest.fixture(scope="module")
def classifier(trained_home):
    return Classifier.load(ModelRegistry(trained_home).active_path())


@pytest.fixture(scope="module")
def attribution(classifier):
    return explain(classifier, TEXT)


def test_efficiency_base_plus_sum_is_the_probability(attribution):
    assert attribution.efficiency_gap() < EFFICIENCY_TOLERANCE
    assert attribution.classes[0] == attribution.label == attribution.explained_class
    for cls in attribution.classes:
        total = attribution.base_values[cls] + attribution.values_for(cls).sum()
        assert total == pytest.approx(attribution.probabilities[cls], abs=1e-4)


def test_features_are_the_words_with_offsets_into_the_text(attribution):
    words = re.findall(r"\w+|[^\w\s]", TEXT)
    assert [f.text for f in attribution.features] == words
    for feature in attribution.features:
        assert TEXT[feature.start : feature.end] == feature.text
        assert set(feature.values) == set(attribution.classes)


def test_the_class_words_carry_the_attribution(classifier):
    result = explain(classifier, "the doctor said it was awful and terrible")
    assert result.label == "negative"
    values = {f.text: f.values["negative"] for f in result.features}
    assert values["awful"] > 0 and values["terrible"] > 0
    assert max(values, key=values.get) in {"awful", "terrible"}


def test_same_input_same_attributions(classifier, attribution):
    again = explain(classifier, TEXT)
    assert np.allclose(again.values_for(again.label), attribution.values_for(attribution.label))


def test_another_class_can_be_explained(classifier):
    result = explain(classifier, TEXT, target="neutral")
    assert result.explained_class == "neutral" and result.classes[0] == "neutral"
    with pytest.raises(DataError, match="Unknown class"):
        explain(classifier, TEXT, target="nope")


def test_budget_method_and_calls_are_recorded(classifier):
    result = explain(classifier, TEXT, budget=80, method="permutation")
    assert (result.method, result.budget) == ("permutation", 80)
    assert result.model_calls > 0 and result.seconds > 0
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_faithfulness_and_flip_stay_within_their_budgets(attribution):
    faith = attribution.faithfulness
    assert faith is not None and faith.model_calls <= 20
    assert -1.0 <= faith.comprehensiveness <= 1.0 and -1.0 <= faith.sufficiency <= 1.0
    assert f"P({attribution.explained_class})" in faith.reading
    flip = attribution.flip
    assert flip is not None and flip.searched <= 20 and flip.model_calls <= 20
    if flip.words:
        assert flip.new_label != attribution.label
        for (start, end), word in zip(flip.spans, flip.words, strict=True):
            assert TEXT[start:end] == word


def test_flip_words_really_flip_the_label(classifier):
    text = "the doctor said it was awful"
    result = explain(classifier, text)
    if result.flip.words is None:
        pytest.skip("no flip within the budget for this model")
    kept = "".join(ch for i, ch in enumerate(text)
                   if not any(s <= i < e for s, e in result.flip.spans))
    assert classifier.predict(kept).label == result.flip.new_label


def test_progressive_answers_come_coarse_first(classifier):
    updates = []
    final = explain(classifier, TEXT, budget=120, on_update=updates.append, method="partition")
    assert [u.final for u in updates] == [False, True]
    assert updates[0].budget < updates[1].budget == 120
    assert updates[-1] is final or updates[-1] == final


def test_cancel_stops_the_work(classifier):
    cancel = CancelFlag()

    def progress(p):
        if p.done > 0:
            cancel.cancel()

    with pytest.raises(Cancelled):
        explain(classifier, TEXT + " and more words here", budget=300, progress=progress,
                cancel=cancel)


def test_empty_text_is_refused_without_a_model_call(classifier, monkeypatch):
    def no_calls(*args, **kwargs):
        raise AssertionError("the model was called")

    monkeypatch.setattr(classifier, "logits", no_calls)
    for text in ("", "   \n\t"):
        with pytest.raises(DataError, match="empty"):
            explain(classifier, text)


def test_one_word(classifier):
    result = explain(classifier, "awful")
    assert [f.text for f in result.features] == ["awful"]
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_a_long_text_is_explained_whole(classifier):
    """Longer than the 32-token window: every word, the tail's too, gets its value."""
    text = "great relief " * 30 + "awful rash THE END"
    result = explain(classifier, text, budget=200)
    assert not result.truncated and result.seen_chars == len(text)
    assert result.features[-1].text == "END"
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_text_beyond_the_window_is_marked_unseen(classifier, monkeypatch):
    """A model trained before windows were pooled reads its first window only: the rest is
    marked as not read."""
    monkeypatch.setattr(classifier, "pooling", "first")
    text = "awful rash " * 40 + "THE END"
    result = explain(classifier, text, budget=60)
    assert result.truncated and result.seen_chars < len(text)
    assert all(f.end <= result.seen_chars for f in result.features)
    html = highlighted_html(text, result)
    assert "cw-unseen" in html and "THE END" in html


@pytest.mark.parametrize("text", [
    "Great 😀 relief 👍🏽 works",
    "这个药很好用，我很喜欢 great",
    "הרופא אמר awful שזה",
    "awful\x00rash\x07 <script>alert('x')</script> &amp; great",
])
def test_unusual_text(classifier, text):
    result = explain(classifier, text, budget=60)
    for feature in result.features:
        assert text[feature.start : feature.end] == feature.text
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE
    html = highlighted_html(text, result)
    assert "<script>" not in html
    # Every character of the text is in the HTML (escaped), in order.
    plain = re.sub(r"<[^>]+>", "", html)
    import html as html_lib

    assert html_lib.unescape(plain) == text


def test_html_has_values_in_tooltips_and_a_legend(attribution):
    html = highlighted_html(TEXT, attribution)
    assert html.count('class="cw-feature"') == len(attribution.features)
    # The default (refined) answer carries its standard error beside each value.
    assert re.search(r'title="awful: [+-]\d\.\d{3} ± \d\.\d{3} to P\(', html)
    assert "raises P(" in legend_html(attribution.explained_class)


def test_bar_chart_as_svg_and_png(attribution):
    svg = bar_chart(attribution, fmt="svg")
    assert b"<svg" in svg[:2000]
    png = bar_chart(attribution, fmt="png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_is_serialisable(attribution):
    data = json.loads(json.dumps(attribution.to_dict()))
    assert data["features"][0]["text"] == "The"


def test_full_precision_explains_the_classifier_itself(classifier):
    result = explain(classifier, TEXT, precision="float32", budget=60)
    prediction = classifier.predict(TEXT)
    for cls, p in prediction.probabilities.items():
        assert result.probabilities[cls] == pytest.approx(p, abs=1e-5)
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_int8_copy_stays_close_to_the_classifier(classifier):
    result = explain(classifier, TEXT, precision="int8", budget=60)
    assert result.precision == "int8"
    prediction = classifier.predict(TEXT)
    for cls, p in prediction.probabilities.items():
        assert result.probabilities[cls] == pytest.approx(p, abs=0.05)
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def test_partition_resolves_every_split_of_the_word_tree(classifier):
    attribution = explain(classifier, TEXT, method="partition")
    n = len(attribution.features)
    assert (attribution.method, attribution.context, attribution.precision) == (
        "partition", "empty", "float32")
    assert attribution.budget == default_budget(n) == 2 * n + 2
    # Resolved to the words: no two words share a value the way an unresolved group does.
    values = attribution.values_for(attribution.label)
    assert len(set(np.round(values, 9))) == n


@pytest.mark.parametrize("context", list(CONTEXTS))
def test_every_partition_context_keeps_efficiency(classifier, context):
    result = explain(classifier, TEXT, context=context, budget=60, with_checks=False,
                     method="partition")
    assert result.context == context
    assert result.efficiency_gap() < EFFICIENCY_TOLERANCE


def exact_shapley(classifier, text: str, cls: str) -> np.ndarray:
    """Shapley values of words by enumerating every subset (for a few words)."""
    masked = MaskedText(make_masker(classifier, "delete"), text)
    n = masked.n_features
    subsets = list(itertools.product([False, True], repeat=n))
    probs = CachedModelFunction(classifier)([masked.keeping(np.array(s)) for s in subsets])
    value = dict(zip(subsets, probs[:, classifier.labels.index(cls)], strict=True))
    shapley = np.zeros(n)
    for subset, v in value.items():
        for i in range(n):
            if subset[i]:
                without = (*subset[:i], False, *subset[i + 1 :])
                size = sum(without)
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                shapley[i] += weight * (v - value[without])
    return shapley


def test_permutation_method_estimates_tree_free_shapley_values(classifier):
    # The Partition tree must not constrain the Permutation explainer: with many
    # permutations it converges on the plain Shapley values of the words.
    text = "awful rash but great relief"
    result = explain(classifier, text, method="permutation", budget=3000, with_checks=False)
    exact = exact_shapley(classifier, text, result.label)
    assert np.abs(result.values_for(result.label) - exact).max() < 0.01


def all_three(texts) -> np.ndarray:
    """A model with an interaction: 1 when alpha, beta and delta are all in the text."""
    return np.array([[float({"alpha", "beta", "delta"} <= set(str(t).split()))]
                     for t in np.asarray(texts, dtype=object).ravel()])


@pytest.mark.parametrize("tree, expected", [
    (False, [1 / 3, 1 / 3, 0.0, 1 / 3]),  # Shapley: the three words share equally
    (True, [0.25, 0.25, 0.0, 0.5]),  # Owen over ((alpha beta)(gamma delta)): delta's group wins
])
def test_the_masker_without_a_tree_gives_shapley_values(classifier, tree, expected):
    masker = make_masker(classifier, "delete", tree=tree)
    explanation = shap.Explainer(all_three, masker, algorithm="permutation", seed=0)(
        ["alpha beta gamma delta"], max_evals=2000, silent=True)[0]
    # Sampled permutations: within 0.07 of the exact values (which differ by 0.17 at delta).
    assert np.asarray(explanation.values).ravel() == pytest.approx(expected, abs=0.07)
