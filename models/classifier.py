"""The trained classifier: load a verified model directory and answer for cases.

Probabilities are temperature-calibrated; a stacked model (``models.stacking``) adds the TF-IDF
model's log-probabilities to the encoder's logits before the temperature. A text longer than the
model window is read whole in overlapping windows whose logits are pooled (``models.inference``),
up to a limit past which the answer says what was not read. A model trained before pooling existed
reads its first window only: its temperature and escalation policy were fitted that way.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from models.artifact import META_FILE, read_json, verify_artifact
from models.calibration import calibrated_probabilities
from models.errors import DataError, ModelIntegrityError
from models.inference import (
    EncodedTexts,
    encode,
    forward_logits,
    forward_outputs,
    quiet_transformers,
)
from models.manifest_signature import ManifestTrust
from models.model_kinds import model_class
from models.progress import CancelFlag, ProgressCallback
from models.stacking import Stacking
from models.types import CaseInput, Prediction
from models.windows import READ_LIMIT_TOKENS

CaseLike = CaseInput | str
# The model directory formats this Casewise reads: 2 added the stacked TF-IDF half. A model of a
# later format is refused rather than read without what it needs.
MODEL_FORMAT = 2
STACKED_FORMAT = 2


def _text_of(case: CaseLike) -> str:
    text = case.text if isinstance(case, CaseInput) else case
    if not isinstance(text, str) or not text.strip():
        raise DataError("The case text is empty. Type or paste the text to classify.")
    return text


@dataclass(frozen=True)
class CaseScores:
    """What one forward pass says about a batch of cases, row by row."""

    probabilities: np.ndarray
    embeddings: np.ndarray
    truncated: np.ndarray
    n_tokens: np.ndarray
    n_windows: np.ndarray | None = None


class Classifier:
    """A fine-tuned sequence classifier with its labels, temperature and window."""

    def __init__(self, model, tokenizer, labels: list[str], temperature: float,
                 model_id: str, max_length: int, path: Path | None = None,
                 pooling: str = "first", stacking: Stacking | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.temperature = float(temperature)
        self.model_id = model_id
        self.max_length = int(max_length)
        self.path = path
        self.pooling = pooling  # how windows are pooled ("first": the first window only)
        self.stacking = stacking
        self._quantized: Classifier | None = None

    @classmethod
    def load(cls, path: Path, verify: bool = True,
             trust: ManifestTrust | None = None) -> Classifier:
        """Load a model directory; with ``verify``, refuse files that do not match the manifest
        and, with ``trust`` (every application load), a manifest none of its keys signed."""
        path = Path(path)
        if verify:
            verify_artifact(path, trust=trust)
        meta = read_json(path / META_FILE)
        if int(meta.get("format", 1)) > MODEL_FORMAT:
            raise ModelIntegrityError(f"Model {path.name} was saved by a newer Casewise (model "
                                      f"format {meta['format']}); update Casewise to use it.")
        stacking = Stacking.load(path)
        if (stacking is not None) != bool(meta.get("stacked", False)):
            raise ModelIntegrityError(f"Model {path.name} is incomplete: its description and "
                                      "its files disagree on whether it is stacked with TF-IDF. "
                                      "Train it again.")
        quiet_transformers()
        model = model_class(read_json(path / "config.json")).from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        # A stacked model keeps its temperature under its own key: a Casewise from before
        # stacking then fails on it loudly instead of reading the encoder alone with it.
        temperature = meta["stacked_temperature" if stacking is not None else "temperature"]
        return cls(model, tokenizer, meta["labels"], temperature, meta["id"],
                   meta["max_length"], path, meta.get("pooling", "first"), stacking)

    def encode(self, texts: Sequence[str]) -> EncodedTexts:
        return encode(self.tokenizer, list(texts), self.max_length, self.pooling)

    @property
    def read_limit(self) -> int:
        """How many tokens of a text are read at most."""
        return self.max_length if self.pooling == "first" else READ_LIMIT_TOKENS

    def seen_prefix(self, text: str) -> int:
        """How many characters of ``text`` the model reads (all of them within its read limit:
        its window, or all its pooled windows)."""
        offsets = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=False,
                                 verbose=False)["offset_mapping"]
        pieces = self.read_limit - self.tokenizer.num_special_tokens_to_add()
        if len(offsets) <= pieces:
            return len(text)
        # What is read is the special tokens around the first ``pieces`` word pieces.
        return offsets[pieces - 1][1]

    def logits(self, texts: Sequence[str], batch_size: int = 32,
               progress: ProgressCallback | None = None,
               cancel: CancelFlag | None = None) -> np.ndarray:
        """Uncalibrated logits (a stacked model's: both halves joined), for layers
        (attributions, calibration) that need them."""
        encoded = self.encode(texts)
        logits = forward_logits(self.model, encoded, self.tokenizer.pad_token_id,
                                batch_size, progress, cancel, pooling=self.pooling)
        return self._stacked(texts, encoded, logits)

    def tfidf_texts(self, texts: Sequence[str], truncated: Sequence[bool]) -> list[str]:
        """The texts as a stacked model's TF-IDF half reads them: what the encoder read, the
        mask token (an attribution's hidden word) taken out."""
        mask = self.tokenizer.mask_token
        read = [(text[: self.seen_prefix(text)] if cut else text)
                for text, cut in zip(texts, truncated, strict=True)]
        return [text.replace(mask, " ") for text in read] if mask else read

    def _stacked(self, texts: Sequence[str], encoded: EncodedTexts,
                 logits: np.ndarray) -> np.ndarray:
        """The encoder's logits joined with the TF-IDF half's (a model that is not stacked:
        the encoder's alone)."""
        if self.stacking is None:
            return logits
        return self.stacking.combine(self.tfidf_texts(texts, encoded.truncated), logits)

    def probabilities(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return calibrated_probabilities(self.logits(texts, batch_size), self.temperature)

    def scores(self, texts: Sequence[CaseLike], batch_size: int = 32,
               progress: ProgressCallback | None = None,
               cancel: CancelFlag | None = None) -> CaseScores:
        """Calibrated probabilities, encoder embeddings and truncation flags, in one pass: what
        the escalation policy needs to fit on, or to decide a case."""
        plain = [_text_of(text) for text in texts]
        encoded = self.encode(plain)
        logits, embeddings = forward_outputs(self.model, encoded, self.tokenizer.pad_token_id,
                                             batch_size, progress, cancel, embeddings=True,
                                             pooling=self.pooling)
        logits = self._stacked(plain, encoded, logits)
        return CaseScores(calibrated_probabilities(logits, self.temperature), embeddings,
                          np.array(encoded.truncated, dtype=bool),
                          np.array(encoded.full_lengths), np.array(encoded.n_windows))

    def quantized(self) -> Classifier:
        """A copy with int8 dynamically quantised linear layers: about twice as fast on a CPU,
        for the hundreds of masked variants an explanation evaluates. Made once, then kept."""
        if self._quantized is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao's deprecation notice
                model = torch.ao.quantization.quantize_dynamic(
                    copy.deepcopy(self.model), {torch.nn.Linear}, dtype=torch.qint8
                )
            self._quantized = Classifier(model, self.tokenizer, self.labels, self.temperature,
                                         self.model_id, self.max_length, self.path,
                                         self.pooling, self.stacking)
        return self._quantized

    def predict(self, case: CaseLike) -> Prediction:
        return self.predict_batch([case])[0]

    def predict_batch(self, cases: Sequence[CaseLike], batch_size: int = 32,
                      progress: ProgressCallback | None = None,
                      cancel: CancelFlag | None = None) -> list[Prediction]:
        texts = [_text_of(case) for case in cases]
        encoded = self.encode(texts)
        logits = forward_logits(self.model, encoded, self.tokenizer.pad_token_id,
                                batch_size, progress, cancel, pooling=self.pooling)
        probs = calibrated_probabilities(self._stacked(texts, encoded, logits),
                                         self.temperature)
        return [
            self._prediction(p, n_tokens, truncated, windows)
            for p, n_tokens, truncated, windows in zip(
                probs, encoded.full_lengths, encoded.truncated, encoded.n_windows, strict=True)
        ]

    def predictions_of(self, scores: CaseScores) -> list[Prediction]:
        windows = scores.n_windows if scores.n_windows is not None else \
            np.ones(len(scores.n_tokens), dtype=int)
        return [self._prediction(p, n, t, w) for p, n, t, w in
                zip(scores.probabilities, scores.n_tokens, scores.truncated, windows,
                    strict=True)]

    def _prediction(self, probs: np.ndarray, n_tokens: int, truncated: bool,
                    windows: int = 1) -> Prediction:
        top_two = np.sort(probs)[::-1][:2]
        return Prediction(
            label=self.labels[int(probs.argmax())],
            probabilities={label: float(p) for label, p in zip(self.labels, probs, strict=True)},
            margin=float(top_two[0] - top_two[1]) if len(top_two) > 1 else 1.0,
            model_id=self.model_id,
            truncated=bool(truncated),
            n_tokens=int(n_tokens),
            windows=int(windows),
        )

