"""The classifier as a function of strings for shap: batched, cached, counted, cancellable."""

from __future__ import annotations

import numpy as np

from models.calibration import calibrated_probabilities
from models.classifier import Classifier
from models.progress import CancelFlag, Progress, ProgressCallback, raise_if_cancelled


class CachedModelFunction:
    """Calibrated probabilities for a batch of texts.

    Masked variants repeat across a progressive run (coarse pass, then refinement) and across
    the faithfulness and flip searches; each distinct text is sent through the model once.
    ``model_calls`` counts the texts actually evaluated.
    """

    def __init__(self, classifier: Classifier, batch_size: int = 64,
                 progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
                 expected_calls: int = 0) -> None:
        self.classifier = classifier
        self.batch_size = batch_size
        self.progress = progress
        self.cancel = cancel
        self.expected_calls = expected_calls
        self.cache: dict[str, np.ndarray] = {}
        self.model_calls = 0

    def prime(self, text: str, probabilities) -> None:
        """Take the probabilities of ``text`` as already known (not a model call)."""
        self.cache[text] = np.asarray(probabilities, dtype=np.float64)

    def __call__(self, texts) -> np.ndarray:
        texts = [str(t) for t in np.asarray(texts, dtype=object).ravel()]
        # Shortest first: a batch is padded to its longest text, and masked variants of one
        # case range from a word to the whole text.
        missing = sorted(dict.fromkeys(t for t in texts if t not in self.cache), key=len)
        for start in range(0, len(missing), self.batch_size):
            raise_if_cancelled(self.cancel)
            chunk = missing[start : start + self.batch_size]
            logits = self.classifier.logits(chunk, batch_size=self.batch_size)
            probs = calibrated_probabilities(logits, self.classifier.temperature)
            self.cache.update(zip(chunk, probs, strict=True))
            self.model_calls += len(chunk)
            self._report()
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 0))

    def _report(self) -> None:
        if self.progress is not None:
            total = max(self.expected_calls, self.model_calls)
            self.progress(Progress("explaining", self.model_calls, total))
