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


SENTENCE_MODULES = ("Transformer", "Pooling", "Normalize")


def sentence_modules_problem(base_dir: Path) -> str | None:
    """Why SetFit cannot use the encoder in ``base_dir`` (None: it can). The saved
    ``SentenceClassifier`` is a transformer, mean pooling and a normalisation: a sentence
    encoder with anything else (a dense layer, another pooling) would be saved as a
    different model from the one trained. A plain encoder folder gets mean pooling."""
    import json

    modules_file = base_dir / "modules.json"
    if not modules_file.is_file():
        return None
    modules = json.loads(modules_file.read_text())
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in ([*SENTENCE_MODULES[:2]], [*SENTENCE_MODULES]):
        return (f"the SetFit recipe needs a sentence encoder of a transformer, mean pooling "
                f"and an optional normalisation; {base_dir} has {', '.join(kinds)}")
    config = base_dir / modules[1].get("path", "") / "config.json"  # the Pooling module
    if config.is_file():
        settings = json.loads(config.read_text())
        if settings.get("pooling_mode", "mean") not in ("mean", ["mean"]) or any(
                settings.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                          "pooling_mode_mean_sqrt_len_tokens")):
            return f"the SetFit recipe needs mean pooling; {base_dir} pools otherwise"
    return None


def _sentence_body(base_dir: Path, max_length: int):
    """SetFit's model on ``base_dir`` (checked by ``sentence_modules_problem``), with an L2
    normalisation added when the encoder has none."""
    from sentence_transformers.sentence_transformer.modules import Normalize
    from setfit import SetFitModel

    problem = sentence_modules_problem(Path(base_dir))
    if problem:
        raise DataError(problem[0].upper() + problem[1:] + ": choose the fine-tune recipe.")
    model = SetFitModel.from_pretrained(str(base_dir), head_params={
        "class_weight": "balanced", "max_iter": 2000})
    body = model.model_body
    if not any(isinstance(m, Normalize) for m in body):
        body.append(Normalize())
    body.max_seq_length = max_length
    return model


@contextmanager
def _quiet():
    """SetFit's and sentence-transformers' INFO logs, progress bars and warnings (a plain
    BERT "creating a new one with mean pooling", deprecations) are not the user's business:
    the app reports progress itself and the model card says what was trained."""
    import datasets

    from models.inference import quiet_transformers

    quiet_transformers()
    bars = datasets.is_progress_bar_enabled()
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
        if bars:
            datasets.enable_progress_bars()


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


def windows_of(tokenizer, texts: Sequence[str], labels_of_texts: Sequence[str],
               config) -> tuple[list[str], list[str]]:
    """Each text as the windows the app reads it in (a long text's every window, with its
    text's label, as the fine-tune trains): the model answers a long text with the mean of its
    windows' logits, so the head must have learned windows from anywhere in a text."""
    from models.inference import encode

    encoded = encode(tokenizer, list(texts), config.max_length, config.pooling)
    if encoded.owners is None:
        return list(texts), list(labels_of_texts)
    pieces = tokenizer.batch_decode(encoded.input_ids, skip_special_tokens=True)
    return pieces, [labels_of_texts[owner] for owner in encoded.window_owners]


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
    window_texts, window_labels = windows_of(model.model_body.tokenizer, texts, labels_of_texts,
                                             config)
    data = Dataset.from_dict({"text": window_texts,
                              "label": [index[y] for y in window_labels]})
    with tempfile.TemporaryDirectory(prefix="casewise-setfit-") as scratch:
        args = TrainingArguments(output_dir=scratch, batch_size=config.batch_size,
                                 num_epochs=1, num_iterations=config.setfit_iterations,
                                 body_learning_rate=config.setfit_learning_rate,
                                 max_length=config.max_length, seed=config.seed,
                                 report_to="none", show_progress_bar=False,
                                 save_strategy="no", logging_strategy="no",
                                 logging_first_step=False,
                                 max_steps=config.max_steps or -1)  # smoke tests
        with _quiet():  # the trainer maps the data set as it is made: a progress bar
            trainer = Trainer(model=model, args=args, train_dataset=data,
                              callbacks=[_Progress(progress, cancel)])
            for noisy in (PrinterCallback, ProgressCallback):  # the app reports its own
                trainer.st_trainer.remove_callback(noisy)
            trainer.train()
    raise_if_cancelled(cancel)
    tokenizer = model.model_body.tokenizer
    return as_sentence_classifier(model, base_dir, labels), tokenizer, time.monotonic() - start
