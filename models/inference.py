"""Batched, padding-aware forward passes shared by training evaluation and the classifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled


def quiet_transformers() -> None:
    """Silence load-time chatter (progress bars, "newly initialised head") that is expected."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids cut to the model window, with each text's full length before the cut."""

    input_ids: list[list[int]]
    full_lengths: list[int]
    max_length: int

    @property
    def truncated(self) -> list[bool]:
        return [n > self.max_length for n in self.full_lengths]


def encode(tokenizer, texts: list[str], max_length: int) -> EncodedTexts:
    full = tokenizer(list(texts), add_special_tokens=True, verbose=False)["input_ids"]
    cut = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return EncodedTexts(cut, [len(ids) for ids in full], max_length)


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
) -> np.ndarray:
    """Logits for every encoded text, in input order."""
    logits, _ = forward_outputs(model, encoded, pad_id, batch_size, progress, cancel, stage)
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
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits, and with ``embeddings`` the mean of the encoder's last hidden states over each
    text's tokens (L2-normalised): one forward pass gives both."""
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
    return logits, pooled


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(mean.float(), dim=-1).numpy()
