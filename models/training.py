"""Fine-tuning a sequence-classification head on a BERT-style encoder, on the CPU.

Length-bucketed batches (little padding), a class-weighted loss (minority classes count),
linear warm-up and decay, and early stopping on validation macro-F1 with the best epoch's
weights restored. Seeded: the same data and config give the same weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    get_linear_schedule_with_warmup,
    set_seed,
)

from models.inference import encode, forward_logits, pad_batch, quiet_transformers
from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled
from models.splits import Splits


@dataclass(frozen=True)
class TrainingConfig:
    max_length: int = 256
    pooling: str = "mean"  # windows of a long text pooled ("first": read one window only)
    batch_size: int = 16
    learning_rate: float = 5e-5
    max_epochs: int = 6
    min_epochs: int = 4  # the head needs a few epochs before validation F1 means anything
    patience: int = 2
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    class_weighting: str = "balanced"  # "balanced" (inverse frequency), "sqrt" or "none"
    bucket_batches: int = 20  # batches per length-sorted chunk
    seed: int = 13
    max_steps: int | None = None  # stop after this many optimiser steps (smoke tests)
    # "auto": SetFit below models.setfit_recipe.SETFIT_BELOW_PER_CLASS examples a class, the
    # fine-tune above; or "fine-tune" / "setfit" as asked.
    recipe: str = "auto"
    setfit_iterations: int = 5  # SetFit: pairs drawn per training text (2 × this many)
    setfit_learning_rate: float = 2e-5  # SetFit's own default for the encoder (as measured)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FineTuneResult:
    model: torch.nn.Module
    tokenizer: object
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def class_weights(y: np.ndarray, n_classes: int, scheme: str) -> torch.Tensor | None:
    """Loss weights that give every class the same total weight ("balanced") or part of it."""
    if scheme == "none":
        return None
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = len(y) / (n_classes * np.maximum(counts, 1.0))
    if scheme == "sqrt":
        weights = np.sqrt(weights)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def epoch_batches(lengths: list[int], config: TrainingConfig, rng: np.random.Generator):
    """Shuffled batches of similar-length texts: chunks of shuffled rows, sorted within."""
    order = rng.permutation(len(lengths))
    chunk = config.batch_size * config.bucket_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + config.batch_size] for i in range(0, len(part), config.batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weight matrices only: decaying biases and LayerNorm gains only hurts."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def load_base(base_dir: Path, labels: list[str]):
    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return model, tokenizer


def fine_tune(
    base_dir: Path,
    splits: Splits,
    labels: list[str],
    config: TrainingConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> FineTuneResult:
    """Fine-tune ``base_dir`` on ``splits.train``; keep the epoch best on ``splits.validation``."""
    start = time.monotonic()
    set_seed(config.seed)
    model, tokenizer = load_base(base_dir, labels)
    index = {label: i for i, label in enumerate(labels)}
    train = encode(tokenizer, list(splits.train.texts), config.max_length, config.pooling)
    val = encode(tokenizer, list(splits.validation.texts), config.max_length, config.pooling)
    # Every window of a long text learns its text's label; validation pools them as the
    # model will when it answers.
    y_train = np.array([index[splits.train.labels[owner]] for owner in train.window_owners])
    y_val = np.array([index[y] for y in splits.validation.labels])
    lengths = [len(ids) for ids in train.input_ids]
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = -(-len(lengths) // config.batch_size)
    total_steps = steps_per_epoch * config.max_epochs
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    optimizer = torch.optim.AdamW(parameter_groups(model, config.weight_decay),
                                  lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(y_train, len(labels),
                                                             config.class_weighting))
    tracker = ProgressTracker("training", total_steps, progress)
    result = FineTuneResult(model, tokenizer)
    best_score, best_state, stale, steps = -1.0, None, 0, 0
    for epoch in range(1, config.max_epochs + 1):
        model.train()
        losses = []
        for batch in epoch_batches(lengths, config, rng):
            raise_if_cancelled(cancel)
            inputs = pad_batch([train.input_ids[i] for i in batch], tokenizer.pad_token_id)
            loss = loss_fn(model(**inputs).logits, torch.as_tensor(y_train[batch]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            steps += 1
            tracker.advance(message=f"epoch {epoch}/{config.max_epochs}, loss {loss.item():.3f}")
            if steps >= total_steps:
                break
        val_logits = forward_logits(model, val, tokenizer.pad_token_id, cancel=cancel,
                                    pooling=config.pooling)
        score = float(f1_score(y_val, val_logits.argmax(1), average="macro"))
        result.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                               "validation_macro_f1": score})
        if score > best_score:
            best_score, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch = epoch
        else:
            stale += 1
        if (stale >= config.patience and epoch >= config.min_epochs) or steps >= total_steps:
            break
        # Early stopping shrinks the work left; keep the time estimate honest.
        tracker.total = min(tracker.total, steps + steps_per_epoch * (config.max_epochs - epoch))
    model.load_state_dict(best_state)
    result.seconds = time.monotonic() - start
    return result
