"""Stacking the encoder with the TF-IDF baseline: one answer from both.

On medical abstracts the fine-tune and the TF-IDF model are about as good (macro-F1 0.594 and
0.599) and wrong on different cases; a weighted sum of their log-probabilities, weights fitted
on the validation split, scored 0.641 (``benchmarks/bench_recipes.py``). On the demo the same
stacking raised accuracy and coverage but lowered macro-F1, so the automatic recipe stacks only
when out-of-fold predictions on the validation split say it wins (``stacking_decision``).

The TF-IDF model is saved as plain arrays (a JSON vocabulary, safetensors weights), never a
pickle: loading a model must not run code. It reads what the encoder reads (the part of a text
within the read limit) with the mask token taken out, so that an attribution's masked text is
the same text to both halves of the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from models.errors import ModelIntegrityError

if TYPE_CHECKING:  # scikit-learn and SciPy load only when a stacked model scores or trains:
    from sklearn.pipeline import Pipeline  # deciding a case with a plain model needs neither

TFIDF_FILE = "tfidf.json"
TFIDF_WEIGHTS_FILE = "tfidf.safetensors"
STACKING_FILE = "stacking.json"
# A TF-IDF model gives no class probability exactly 0 (a class absent from training would):
# its log is clipped here, as the benchmark that chose stacking did.
PROBABILITY_FLOOR = 1e-6
# The automatic recipe stacks when the out-of-fold macro-F1 on validation beats the encoder's
# own by at least this much: less is within what re-drawing 90 validation cases moves.
STACKING_MARGIN = 0.01
STACKING_FOLDS = 5


@dataclass(frozen=True)
class TfidfModel:
    """A fitted TF-IDF + logistic-regression pipeline as arrays: what it takes to score."""

    vocabulary: dict[str, int]
    ngram_range: tuple[int, int]
    sublinear_tf: bool
    idf: np.ndarray  # (n_terms,)
    coef: np.ndarray  # (rows, n_terms): one row per class, or one for a two-class model
    intercept: np.ndarray  # (rows,)
    classes: tuple[int, ...]  # the label index of each class the model was fitted on
    n_labels: int

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, n_labels: int) -> TfidfModel:
        vectorizer, regression = pipeline.steps[0][1], pipeline.steps[-1][1]
        if vectorizer.norm != "l2" or not vectorizer.use_idf or not vectorizer.lowercase:
            raise ValueError("only an l2-normalised, lower-cased TF-IDF with idf is saved")
        return cls({term: int(i) for term, i in vectorizer.vocabulary_.items()},
                   tuple(vectorizer.ngram_range), bool(vectorizer.sublinear_tf),
                   vectorizer.idf_.astype(np.float64), regression.coef_.astype(np.float64),
                   regression.intercept_.astype(np.float64),
                   tuple(int(c) for c in regression.classes_), n_labels)

    def features(self, texts: list[str]):
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        counts = CountVectorizer(vocabulary=self.vocabulary, ngram_range=self.ngram_range,
                                 dtype=np.float64).transform(texts)
        if self.sublinear_tf:
            counts.data = np.log(counts.data) + 1.0
        return normalize(counts.multiply(self.idf).tocsr(), norm="l2")

    def log_probabilities(self, texts: list[str]) -> np.ndarray:
        """Log-probabilities in label-index order (a class absent from training: the floor)."""
        from scipy.special import log_softmax

        scores = np.asarray(self.features(texts) @ self.coef.T) + self.intercept
        if self.coef.shape[0] == 1:  # scikit-learn's two-class model: one logistic score
            scores = np.hstack([np.zeros_like(scores), scores])
        probs = np.zeros((len(texts), self.n_labels))
        probs[:, list(self.classes)] = np.exp(log_softmax(scores, axis=1))
        return np.log(np.clip(probs, PROBABILITY_FLOOR, 1.0))

    def save(self, directory: Path, description: dict) -> None:
        from safetensors.numpy import save_file

        (directory / TFIDF_FILE).write_text(json.dumps({
            **description, "ngram_range": list(self.ngram_range),
            "sublinear_tf": self.sublinear_tf, "classes": list(self.classes),
            "n_labels": self.n_labels, "vocabulary": self.vocabulary,
        }, ensure_ascii=False), encoding="utf-8")
        # safetensors writes an array's memory as it lies: scikit-learn's coef_ can be in
        # Fortran order, which would come back transposed-scrambled.
        save_file({name: np.ascontiguousarray(array) for name, array in
                   (("idf", self.idf), ("coef", self.coef), ("intercept", self.intercept))},
                  str(directory / TFIDF_WEIGHTS_FILE))

    @classmethod
    def load(cls, directory: Path) -> TfidfModel:
        from safetensors.numpy import load_file

        try:
            meta = json.loads((directory / TFIDF_FILE).read_text(encoding="utf-8"))
            arrays = load_file(str(directory / TFIDF_WEIGHTS_FILE))
            model = cls(meta["vocabulary"], tuple(meta["ngram_range"]),
                        bool(meta["sublinear_tf"]), arrays["idf"], arrays["coef"],
                        arrays["intercept"], tuple(meta["classes"]), int(meta["n_labels"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"The TF-IDF half of the stacked model in {directory} "
                                      f"cannot be read ({exc}). Train the model again.") from exc
        if not model.fits_together():
            raise ModelIntegrityError(f"The TF-IDF half of the stacked model in {directory} "
                                      "does not fit together. Train the model again.")
        return model

    def fits_together(self) -> bool:
        """Shapes and indices agree: every term has its own column, a row per class (one for
        two), an intercept per row, and the classes are labels of the model."""
        n_terms, rows = len(self.idf), (1 if len(self.classes) == 2 else len(self.classes))
        return (sorted(self.vocabulary.values()) == list(range(n_terms))
                and self.coef.shape == (rows, n_terms) and self.intercept.shape == (rows,)
                and len(set(self.classes)) == len(self.classes)
                and all(0 <= c < self.n_labels for c in self.classes))


@dataclass(frozen=True)
class Stacker:
    """``w_model * encoder logits + w_tfidf * TF-IDF log-probabilities + bias``: the logits
    the classifier's temperature then calibrates."""

    w_model: float
    w_tfidf: float
    bias: tuple[float, ...]

    @classmethod
    def fit(cls, model_logits: np.ndarray, tfidf_log_probs: np.ndarray,
            truth: np.ndarray) -> Stacker:
        """The weights and per-class bias of least negative log-likelihood on ``truth``."""
        from scipy.optimize import minimize
        from scipy.special import log_softmax

        # Fitted over the classes that have cases among ``truth``: a class with none would
        # have its bias run off towards minus infinity (and the others' up) and never be
        # answered. Biases are centred (softmax does not see a shared shift); an absent class
        # keeps the centre, 0.
        present = np.flatnonzero(np.bincount(truth, minlength=model_logits.shape[1]))
        a, b = model_logits[:, present], tfidf_log_probs[:, present]
        rows, within = np.arange(len(truth)), np.searchsorted(present, truth)

        def nll(w: np.ndarray) -> float:
            combined = w[0] * a + w[1] * b + w[2:]
            return float(-log_softmax(combined, axis=1)[rows, within].mean())

        start = np.r_[1.0, 1.0, np.zeros(len(present))]
        w = minimize(nll, start, method="L-BFGS-B").x
        bias = np.zeros(model_logits.shape[1])
        bias[present] = w[2:] - w[2:].mean()
        return cls(float(w[0]), float(w[1]), tuple(float(b) for b in bias))

    def combine(self, model_logits: np.ndarray, tfidf_log_probs: np.ndarray) -> np.ndarray:
        return self.w_model * model_logits + self.w_tfidf * tfidf_log_probs + np.array(self.bias)

    def to_dict(self) -> dict:
        return {"w_model": self.w_model, "w_tfidf": self.w_tfidf, "bias": list(self.bias)}

    @classmethod
    def from_dict(cls, data: dict) -> Stacker:
        return cls(float(data["w_model"]), float(data["w_tfidf"]),
                   tuple(float(b) for b in data["bias"]))


@dataclass(frozen=True)
class Stacking:
    """The TF-IDF model and the weights that join it to the encoder, as saved with a model."""

    tfidf: TfidfModel
    stacker: Stacker

    def combine(self, texts: list[str], model_logits: np.ndarray) -> np.ndarray:
        return self.stacker.combine(model_logits, self.tfidf.log_probabilities(texts))

    def save(self, directory: Path, tfidf_description: dict, decision: dict) -> None:
        self.tfidf.save(directory, tfidf_description)
        (directory / STACKING_FILE).write_text(json.dumps(
            {**self.stacker.to_dict(), "decision": decision}, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> Stacking | None:
        """The stacking saved in ``directory``; None for a model that is not stacked."""
        path = Path(directory) / STACKING_FILE
        if not path.is_file():
            return None
        try:
            stacker = Stacker.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelIntegrityError(f"{path} cannot be read ({exc}). Train the model "
                                      "again.") from exc
        stacking = cls(TfidfModel.load(Path(directory)), stacker)
        if len(stacker.bias) != stacking.tfidf.n_labels:
            raise ModelIntegrityError(f"{path} does not fit the model's labels. Train the model "
                                      "again.")
        return stacking


def out_of_fold_logits(model_logits: np.ndarray, tfidf_log_probs: np.ndarray,
                       truth: np.ndarray, seed: int) -> np.ndarray:
    """Stacked logits of each validation case from weights fitted on the other folds: an
    honest estimate of what stacking does to cases its weights never saw."""
    from sklearn.model_selection import KFold

    out = np.zeros_like(model_logits, dtype=np.float64)
    folds = KFold(n_splits=min(STACKING_FOLDS, len(truth)), shuffle=True, random_state=seed)
    for fit_rows, held_rows in folds.split(model_logits):
        stacker = Stacker.fit(model_logits[fit_rows], tfidf_log_probs[fit_rows],
                              truth[fit_rows])
        out[held_rows] = stacker.combine(model_logits[held_rows], tfidf_log_probs[held_rows])
    return out


def stacking_decision(model_logits: np.ndarray, tfidf_log_probs: np.ndarray,
                      truth: np.ndarray, seed: int, forced: bool) -> dict:
    """Whether to stack, and the numbers that decided it (kept on the model card)."""
    from sklearn.metrics import f1_score

    def macro_f1(logits: np.ndarray) -> float:
        return float(f1_score(truth, logits.argmax(1), average="macro",
                              labels=range(logits.shape[1])))

    alone = macro_f1(model_logits)
    if len(truth) < 2 * STACKING_FOLDS:  # too few to estimate what stacking does
        return {"stack": bool(forced), "reason": "asked for" if forced else (
            f"not stacked: {len(truth)} validation cases are too few to tell whether stacking "
            "helps"), "validation_macro_f1": {"encoder": alone, "stacked_out_of_fold": None},
            "folds": STACKING_FOLDS, "margin": STACKING_MARGIN}
    stacked = macro_f1(out_of_fold_logits(model_logits, tfidf_log_probs, truth, seed))
    wins = stacked >= alone + STACKING_MARGIN
    if forced:
        reason = "asked for"
    elif wins:
        reason = (f"validation macro-F1 {stacked:.3f} stacked (out of fold) against "
                  f"{alone:.3f} alone, a gain of at least {STACKING_MARGIN}")
    else:
        reason = (f"not stacked: validation macro-F1 {stacked:.3f} stacked (out of fold) "
                  f"against {alone:.3f} alone, not a gain of {STACKING_MARGIN}")
    return {"stack": bool(forced or wins), "reason": reason, "validation_macro_f1": {
        "encoder": alone, "stacked_out_of_fold": stacked}, "folds": STACKING_FOLDS,
        "margin": STACKING_MARGIN}
