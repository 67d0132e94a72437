"""Training on little data: SetFit (Tunstall et al., "Efficient Few-Shot Learning Without
Prompts", arXiv:2209.11055), through the ``setfit`` package.

SetFit first fine-tunes the sentence encoder contrastively — pairs of training texts of the
same label pulled together, of different labels pushed apart, so a few dozen examples a class
give thousands of pairs — then fits a logistic-regression head on the sentence embeddings.
``benchmarks/bench_small_data.py`` measured it against the fine-tune on the demo's splits: it
wins macro-F1 at 8, 16, 32 and 64 training examples a class (+0.23, +0.21, +0.04, +0.02) and
loses with the whole split (170 a class: 0.488 against 0.528). So ``models.recipes`` takes it
below ``SETFIT_BELOW_PER_CLASS`` examples a class on average, the fine-tune above.

The trained encoder and head are saved as one ``SentenceClassifier`` (a transformers model:
the mean-pooled, L2-normalised sentence embedding and a linear layer holding the logistic
regression's weights), so prediction, long-text windows, temperature, the escalation policy,
quantisation and attributions read it exactly as they read a fine-tuned model.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, TrainerCallback, set_seed

from models.errors import DataError
from models.model_kinds import HEAD_MARKER
from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled
from models.sentence_head import SENTENCE_HEAD, SentenceClassifier


class _Progress(TrainerCallback):
    """SetFit's training steps as the app's progress, and the cancel flag checked each step
    (raising out of the training: nothing is saved)."""

    def __init__(self, progress: ProgressCallback | None, cancel: CancelFlag | None) -> None:
        self.tracker = ProgressTracker("training (SetFit)", 1, progress)
        self.cancel = cancel

    def on_train_begin(self, args, state, control, **kwargs):
        self.tracker.total = max(int(state.max_steps or 1), 1)
        self.tracker.report()

    def on_step_end(self, args, state, control, **kwargs):
        raise_if_cancelled(self.cancel)
        self.tracker.advance(message=f"step {state.global_step}/{state.max_steps}")


def _sentence_body(base_dir: Path, max_length: int):
    """SetFit's model on ``base_dir``; a mean-pooling body is required (the saved model pools
    that way) and an L2 normalisation is added when the encoder has none."""
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling
    from setfit import SetFitModel

    model = SetFitModel.from_pretrained(str(base_dir), head_params={
        "class_weight": "balanced", "max_iter": 2000})
    body = model.model_body
    pooling = [m for m in body if isinstance(m, Pooling)]
    if not pooling or getattr(pooling[0], "pooling_mode", None) not in ("mean", ["mean"]):
        raise DataError(f"{base_dir} does not mean-pool its tokens; the SetFit recipe needs a "
                        "mean-pooling sentence encoder (train with --recipe fine-tune).")
    if not any(isinstance(m, Normalize) for m in body):
        body.append(Normalize())
    body.max_seq_length = max_length
    return model


@contextmanager
def _quiet():
    """SetFit's and sentence-transformers' INFO logs and warnings (a plain BERT "creating a
    new one with mean pooling", deprecations) are not the user's business: the model card
    says what was trained."""
    import datasets

    from models.inference import quiet_transformers

    quiet_transformers()
    datasets.disable_progress_bars()
    loggers = [logging.getLogger(name) for name in ("setfit", "sentence_transformers")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def head_weights(head, n_labels: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The logistic regression's coefficients as a linear layer over every label (a label the
    head never saw gets a very low score; two classes: the second's logit against 0)."""
    weight = np.zeros((n_labels, dim), dtype=np.float32)
    bias = np.full(n_labels, -30.0, dtype=np.float32)
    classes = np.asarray(head.classes_, dtype=int)
    coef, intercept = np.asarray(head.coef_), np.asarray(head.intercept_)
    if len(classes) == 2 and coef.shape[0] == 1:
        weight[classes[1]], bias[classes[1]] = coef[0], intercept[0]
        bias[classes[0]] = 0.0
    else:
        weight[classes], bias[classes] = coef, intercept
    return weight, bias


def as_sentence_classifier(setfit_model, base_dir: Path, labels: list[str]) -> SentenceClassifier:
    """One transformers model holding SetFit's trained encoder and head."""
    encoder = setfit_model.model_body[0].auto_model
    config = BertConfig.from_pretrained(base_dir, num_labels=len(labels),
                                        id2label=dict(enumerate(labels)),
                                        label2id={label: i for i, label in enumerate(labels)})
    setattr(config, HEAD_MARKER, SENTENCE_HEAD)
    config.architectures = ["SentenceClassifier"]
    model = SentenceClassifier(config)
    state = {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")}
    model.bert.load_state_dict(state)
    weight, bias = head_weights(setfit_model.model_head, len(labels), config.hidden_size)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.from_numpy(weight))
        model.classifier.bias.copy_(torch.from_numpy(bias))
    return model.eval()


def setfit_train(base_dir: Path, texts: Sequence[str], labels_of_texts: Sequence[str],
                 labels: list[str], config, progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None) -> tuple[SentenceClassifier, object, float]:
    """Contrastive fine-tuning of ``base_dir`` on the training texts, then the head; the
    model, its tokenizer and the seconds taken. Seeded."""
    from datasets import Dataset
    from setfit import Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    start = time.monotonic()
    set_seed(config.seed)
    with _quiet():
        model = _sentence_body(base_dir, config.max_length)
    index = {label: i for i, label in enumerate(labels)}
    data = Dataset.from_dict({"text": list(texts), "label": [index[y] for y in labels_of_texts]})
    with tempfile.TemporaryDirectory(prefix="casewise-setfit-") as scratch:
        args = TrainingArguments(output_dir=scratch, batch_size=config.batch_size,
                                 num_epochs=1, num_iterations=config.setfit_iterations,
                                 body_learning_rate=config.setfit_learning_rate,
                                 max_length=config.max_length, seed=config.seed,
                                 report_to="none", show_progress_bar=False,
                                 save_strategy="no", logging_strategy="no",
                                 logging_first_step=False,
                                 max_steps=config.max_steps or -1)  # smoke tests
        trainer = Trainer(model=model, args=args, train_dataset=data,
                          callbacks=[_Progress(progress, cancel)])
        for noisy in (PrinterCallback, ProgressCallback):  # the app reports progress itself
            trainer.st_trainer.remove_callback(noisy)
        with _quiet():
            trainer.train()
    raise_if_cancelled(cancel)
    tokenizer = model.model_body.tokenizer
    return as_sentence_classifier(model, base_dir, labels), tokenizer, time.monotonic() - start
