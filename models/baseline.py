"""TF-IDF + logistic regression: the cheap baseline every fine-tune is reported beside.

If the fine-tuned encoder cannot beat this, the model card says so plainly.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

BASELINE_DESCRIPTION = (
    "TF-IDF (word 1-2 grams, sublinear tf, min_df 2) + logistic regression (C=1, lbfgs)"
)


def fit_baseline(texts: list[str], y: np.ndarray, seed: int) -> Pipeline:
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    return pipeline.fit(texts, y)


def baseline_probabilities(pipeline: Pipeline, texts: list[str], n_classes: int) -> np.ndarray:
    """Probabilities in label-index order, with zero columns for classes absent from train."""
    probs = np.zeros((len(texts), n_classes))
    probs[:, pipeline.classes_] = pipeline.predict_proba(texts)
    return probs
