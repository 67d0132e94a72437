"""Batched, padding-aware forward passes shared by training evaluation and the classifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled
from models.windows import POOLINGS, READ_LIMIT_TOKENS, window_pieces


def quiet_transformers() -> None:
    """Silence load-time chatter (progress bars, "newly initialised head") that is expected."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@dataclass(frozen=True)
class EncodedTexts:
    """Each text as token windows: ``input_ids`` holds every window, ``owners`` the text each
    belongs to (in order), ``full_lengths`` each text's whole length in tokens."""

    input_ids: list[list[int]]
    full_lengths: list[int]
    max_length: int
    owners: list[int] | None = None  # None: one window per text
    read_limit: int | None = None  # tokens read at most per text (None: one window)

    @property
    def limit(self) -> int:
        return self.read_limit or self.max_length

    @property
    def truncated(self) -> list[bool]:
        """Texts whose tail was not read (longer than every window together can hold)."""
        return [n > self.limit for n in self.full_lengths]

    @property
    def window_owners(self) -> list[int]:
        return self.owners if self.owners is not None else list(range(len(self.input_ids)))

    @property
    def n_windows(self) -> list[int]:
        counts = [0] * len(self.full_lengths)
        for owner in self.window_owners:
            counts[owner] += 1
        return counts


def encode(tokenizer, texts: list[str], max_length: int, pooling: str = "first") -> EncodedTexts:
    """Token ids of ``texts``: cut to one window (``pooling="first"``), or split into
    overlapping windows up to ``READ_LIMIT_TOKENS`` (every other pooling)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    if pooling == "first":
        full = tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]
        cut = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
        return EncodedTexts(cut, [len(ids) for ids in full], max_length)
    bare = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    # The tokenizer's own special tokens around an empty text ([CLS] [SEP] for BERT) wrap
    # every window, as they wrap a text read in one piece.
    wrap = tokenizer("", add_special_tokens=True)["input_ids"]
    head, tail = wrap[:1], wrap[1:]
    lengths = [len(ids) + len(wrap) for ids in bare]
    windows, owners = [], []
    for owner, ids in enumerate(bare):
        for piece in window_pieces(ids, max_length - len(wrap)):
            windows.append([*head, *piece, *tail])
            owners.append(owner)
    return EncodedTexts(windows, lengths, max_length, owners, READ_LIMIT_TOKENS)


def pad_batch(sequences: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def length_sorted_batches(lengths: list[int], batch_size: int,
                          max_tokens: int = 4096) -> list[list[int]]:
    """Indices grouped so each batch holds texts of similar length: less padding, same answer.

    A batch closes at ``batch_size`` texts or when its padded size would pass ``max_tokens``,
    so a batch of long texts does not pay for one giant padded tensor.
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current and (len(current) >= batch_size
                        or (len(current) + 1) * lengths[index] > max_tokens):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def forward_logits(
    model,
    encoded: EncodedTexts,
    pad_id: int,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    stage: str = "classifying",
    pooling: str = "mean",
) -> np.ndarray:
    """Logits for every encoded text (its windows pooled), in input order."""
    logits, _ = forward_outputs(model, encoded, pad_id, batch_size, progress, cancel, stage,
                                pooling=pooling)
    return logits


def forward_outputs(
    model,
    encoded: EncodedTexts,
    pad_id: int,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    stage: str = "classifying",
    embeddings: bool = False,
    pooling: str = "mean",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits per text (its windows' logits pooled: ``pooling``), and with ``embeddings`` the
    mean of the encoder's last hidden states over each text's tokens (L2-normalised): one
    forward pass gives both."""
    n = len(encoded.input_ids)
    logits = np.zeros((n, model.config.num_labels), dtype=np.float32)
    pooled = np.zeros((n, model.config.hidden_size), dtype=np.float32) if embeddings else None
    tracker = ProgressTracker(stage, n, progress)
    model.eval()
    with torch.inference_mode():
        for batch in length_sorted_batches([len(s) for s in encoded.input_ids], batch_size):
            raise_if_cancelled(cancel)
            inputs = pad_batch([encoded.input_ids[i] for i in batch], pad_id)
            out = model(**inputs, output_hidden_states=embeddings)
            logits[batch] = out.logits.float().numpy()
            if pooled is not None:
                pooled[batch] = mean_pool(out.hidden_states[-1], inputs["attention_mask"])
            tracker.advance(len(batch))
    if encoded.owners is None:
        return logits, pooled
    return pool_windows(logits, encoded, pooling), \
        None if pooled is None else pool_embeddings(pooled, encoded)


def _window_starts(encoded: EncodedTexts) -> np.ndarray:
    """Where each text's windows begin in the window rows (``encode`` keeps them in order)."""
    return np.concatenate(([0], np.cumsum(encoded.n_windows)[:-1])).astype(int)


def pool_windows(window_logits: np.ndarray, encoded: EncodedTexts, pooling: str) -> np.ndarray:
    """One row of logits per text from its windows' rows."""
    starts = _window_starts(encoded)
    if pooling == "max":
        return np.maximum.reduceat(window_logits, starts, axis=0)
    counts = np.asarray(encoded.n_windows, dtype=np.float32)[:, None]
    return (np.add.reduceat(window_logits, starts, axis=0) / counts).astype(np.float32)


def pool_embeddings(window_embeddings: np.ndarray, encoded: EncodedTexts) -> np.ndarray:
    """A text's embedding: the mean of its windows' (re-normalised)."""
    texts = np.add.reduceat(window_embeddings, _window_starts(encoded), axis=0)
    norms = np.linalg.norm(texts, axis=1, keepdims=True)
    return (texts / np.clip(norms, 1e-12, None)).astype(np.float32)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(mean.float(), dim=-1).numpy()
