"""The O(n log n) partition tree gives shap's own tree, merge for merge, on texts holding every
kind of token shap's merge score treats specially (word pieces, apostrophes, brackets,
commas, sentence ends, connectors, control tokens, separators), and on real masker input."""

from __future__ import annotations

import random

import numpy as np
import pytest
from shap.maskers import _text as shap_text

from explainers import word_tree

TOKENS = ["the", "rash", "came", "back", "##ing", "##s", "'", "t", "s", ",", ".", "?", "!",
          "(", ")", "[", "]", "{", "}", "and", "or", "but", "because", "[CLS]", "[SEP]",
          "[MASK]", "patient", "mg", "10", "-", ";", ":", '"']


def shap_tree(tokens, special):
    original = getattr(shap_text, "original_partition_tree", shap_text.partition_tree)
    return original(tokens, special)


@pytest.mark.parametrize("seed", range(40))
def test_the_tree_is_shaps_tree(seed):
    rng = random.Random(seed)
    tokens = [rng.choice(TOKENS) for _ in range(rng.randint(2, 160))]
    special = ["[SEP]"] if seed % 2 else []
    np.testing.assert_array_equal(word_tree.partition_tree(tokens, special),
                                  shap_tree(tokens, special))


def test_the_masker_builds_the_same_tree_for_a_real_text():
    from explainers.attribution import WordMasker

    text = ("The patient (a 71-year-old) didn't tolerate it: nausea, rash and fever; "
            "she stopped after 3 days? Yes! Restarted at 10 mg, then [unclear] again.") * 6
    word_tree.install()
    masker = WordMasker("[MASK]", "delete")
    fast = masker.clustering(text)
    shap_text.partition_tree = shap_text.original_partition_tree
    try:
        slow = masker.clustering(text + " ")  # a new string: no cache
    finally:
        shap_text.partition_tree = word_tree.partition_tree
    np.testing.assert_array_equal(fast, slow)


def test_one_token_gives_an_empty_tree():
    assert word_tree.partition_tree(["word"], []).shape == (0, 4)
