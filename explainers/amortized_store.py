"""The amortized explainer kept with its model: fitted after training, gated, signed, loaded.

``fit_explainer`` is the background job (plain function, progress callback, cancel flag): sampled
Shapley values of the training texts, the head fitted to them, and a gate — on held-out texts
the head must agree with their sampled values at least as well as the partition explainer does
(Spearman and top-5 by |value|, explained class), or it is kept but switched off. The result is
written beside the model as ``<model>/explainers/<id>/`` (head as safetensors, the record as
JSON) with its own manifest, signed as ``<model id>/explainers/<id>``; the model's own files
and signature are not touched.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from explainers import amortized, estimators
from explainers.amortized import AmortizedHead, WordStates
from models.artifact import read_json, verify_artifact, write_artifact, write_json
from models.errors import DataError, ModelIntegrityError
from models.manifest_signature import EXPLAINERS_DIR, explainer_subject
from models.progress import CancelFlag, ProgressCallback
from models.registry import sub_artifact_dirs

if TYPE_CHECKING:
    from models.classifier import Classifier
    from models.manifest_signature import ManifestTrust
    from models.registry import ModelRegistry

HEAD_FILE = "head.safetensors"
RECORD_FILE = "explainer.json"
FORMAT = 2  # 2: lower layers' word states among the inputs ("layers"); 1 loads as before
DEFAULT_TEXTS = 600
MIN_TEXTS = 20
TOP_K = 5
# The gate compares with the held-out texts' sampled values; one pair is too noisy to rank two
# explainers on a few dozen texts, so those texts get this many more.
GATE_PAIRS = 4


@dataclass(frozen=True)
class AmortizedExplainer:
    """A fitted head for one model, with the numbers that decided whether it is used."""

    heads: tuple[AmortizedHead, ...]
    model_id: str
    labels: tuple[str, ...]
    base: np.ndarray  # the model's probabilities for the empty text
    enabled: bool
    record: dict
    explainer_id: str = ""
    # Hidden-state indices whose word means are inputs beside the last layer's (format 1: none).
    layers: tuple[int, ...] = ()

    def values(self, classifier: Classifier, text: str, probabilities: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Efficient values [words, classes] for ``text`` (what the model reads of it): the
        mean of the heads, and their spread (the standard error of a bagged estimate)."""
        states = amortized.word_states(classifier, [text], layers=self.layers)[0]
        per_head = amortized.efficient_values(self.heads, states, self.base, probabilities)
        spread = per_head.std(0, ddof=1) if len(per_head) > 1 else np.zeros(per_head.shape[1:])
        return per_head.mean(0), spread

    @property
    def summary(self) -> str:
        gate = self.record["gate"]
        state = "on" if self.enabled else "off"
        return (f"Amortized explainer {self.explainer_id or '(unsaved)'} — {state}: on "
                f"{gate['texts']} held-out texts it agrees with sampled Shapley values at "
                f"Spearman {gate['head_spearman']:.2f} and top-{TOP_K} "
                f"{gate['head_top']:.2f}, the partition explainer at "
                f"{gate['partition_spearman']:.2f} and {gate['partition_top']:.2f}.")


def gate(classifier: Classifier, heads: Sequence[AmortizedHead], base: np.ndarray,
         states: Sequence[WordStates], targets: Sequence[np.ndarray],
         cancel: CancelFlag | None = None) -> dict:
    """Head and partition explainer against the held-out texts' sampled values."""
    from explainers.attribution import explain

    head_scores, partition_scores = [], []
    for state, target in zip(states, targets, strict=True):
        if len(target) < 2:
            continue
        probabilities = classifier.probabilities([state.text])[0]
        column = int(probabilities.argmax())
        values = amortized.efficient_values(heads, state, base, probabilities).mean(0)[:, column]
        head_scores.append(estimators.rank_agreement(values, target[:, column]))
        partition = explain(classifier, state.text, with_checks=False, cancel=cancel,
                            method="partition")
        partition_scores.append(estimators.rank_agreement(
            partition.values_for(classifier.labels[column]), target[:, column]))
    head_mean = np.mean(head_scores, axis=0) if head_scores else (0.0, 0.0)
    part_mean = np.mean(partition_scores, axis=0) if partition_scores else (0.0, 0.0)
    passed = bool(head_scores and head_mean[0] >= part_mean[0]
                  and head_mean[1] >= part_mean[1])
    return {"texts": len(head_scores), "head_spearman": float(head_mean[0]),
            "head_top": float(head_mean[1]), "partition_spearman": float(part_mean[0]),
            "partition_top": float(part_mean[1]), "passed": passed,
            "rule": "on when the head's mean Spearman and top-5 (|value|) against the held-out "
                    "texts' sampled values are at least the partition explainer's"}


def check_max_texts(max_texts: int) -> None:
    """Refuse a cap below what a head and its gate can be fitted on."""
    if max_texts < MIN_TEXTS:
        raise DataError(f"An amortized explainer is fitted on at least {MIN_TEXTS} texts; "
                        f"{max_texts} were asked for. Ask for {MIN_TEXTS} or more.")


def fit_explainer(classifier: Classifier, texts: Sequence[str], max_texts: int = DEFAULT_TEXTS,
                  pairs: int = 1, seed: int = amortized.TARGET_SEED,
                  progress: ProgressCallback | None = None,
                  cancel: CancelFlag | None = None) -> AmortizedExplainer:
    """Targets for up to ``max_texts`` of ``texts`` (a seeded shuffle, so any cap is a random
    sample), the head, and the gate on the held-out tenth."""
    check_max_texts(max_texts)
    usable = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(usable) < MIN_TEXTS:
        raise DataError(f"An amortized explainer needs at least {MIN_TEXTS} training texts; "
                        f"{len(usable)} were given. Fit it on the data the model was trained "
                        "on.")
    order = np.random.default_rng(seed).permutation(len(usable))[:max_texts]
    chosen = [usable[i] for i in order]
    started = time.process_time()

    targets = amortized.shapley_targets(classifier, chosen, pairs, seed, progress, cancel)
    return explainer_from_targets(classifier, chosen, targets, pairs, seed, cancel,
                                  time.process_time() - started, progress=progress)


def gate_texts(classifier: Classifier, texts: Sequence[str],
               seed: int = amortized.TARGET_SEED) -> list[int]:
    """Which of ``texts`` the heads are not fitted on (the gate's)."""
    states_words = [len(amortized.word_spans(t[: classifier.seen_prefix(t)])) for t in texts]
    held, _ = amortized.held_out_split(states_words, seed)
    return [int(i) for i in held]


def gate_targets(classifier: Classifier, texts: Sequence[str], seed: int,
                 progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None) -> list[np.ndarray]:
    """GATE_PAIRS more pairs for each of ``texts`` (the held-out ones), seeded apart from the
    training targets."""
    return amortized.shapley_targets(classifier, texts, GATE_PAIRS, seed + 1, progress, cancel,
                                     stage="gate targets")


def explainer_from_targets(classifier: Classifier, texts: Sequence[str],
                           targets: Sequence[np.ndarray], pairs: int = 1,
                           seed: int = amortized.TARGET_SEED, cancel: CancelFlag | None = None,
                           target_seconds: float = 0.0,
                           extra_gate_targets: Sequence[np.ndarray] | None = None,
                           progress: ProgressCallback | None = None) -> AmortizedExplainer:
    """The heads fitted to sampled values already computed, and the gate (its texts' extra
    pairs computed here unless given)."""
    started = time.process_time()
    layers = amortized.lower_layers(classifier)
    states = amortized.word_states(classifier, texts, cancel=cancel, layers=layers)
    fit = amortized.fit_heads(states, targets, seed=seed, cancel=cancel)
    base = amortized.empty_text_base(classifier)
    held = fit.held_out_indices
    extra = (extra_gate_targets if extra_gate_targets is not None else
             gate_targets(classifier, [texts[i] for i in held], seed, progress, cancel))
    combined = [(targets[i] * pairs + more * GATE_PAIRS) / (pairs + GATE_PAIRS)
                for i, more in zip(held, extra, strict=True)]
    checked = gate(classifier, fit.heads, base, [states[i] for i in held], combined, cancel)
    checked["target_pairs"] = pairs + GATE_PAIRS
    record = {
        "format": FORMAT, "model_id": classifier.model_id, "labels": list(classifier.labels),
        "base": [float(b) for b in base], "hidden": amortized.HIDDEN, "layers": list(layers),
        "heads": len(fit.heads),
        "targets": {"estimator": "antithetic permutation pairs (exact up to "
                                 f"{amortized.TARGET_EXACT_MAX_WORDS} words)",
                    "pairs": pairs, "seed": seed, "texts": len(texts),
                    "train_texts": fit.train_texts, "held_out_texts": fit.held_out_texts},
        "epochs": list(fit.epochs), "held_out_loss": fit.held_out_loss, "gate": checked,
        "cpu_seconds": {"targets": round(target_seconds, 1),
                        "heads_and_gate": round(time.process_time() - started, 1)},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return AmortizedExplainer(fit.heads, classifier.model_id, tuple(classifier.labels), base,
                              checked["passed"], record, layers=layers)


def kept_texts(model_dir: Path) -> list[str]:
    """The texts kept with the model that it was not tested on: its calibration split (the
    training split itself is not kept with a model)."""
    import json

    path = Path(model_dir) / "splits" / "calibration.jsonl"
    if not path.is_file():
        raise DataError(f"Model {Path(model_dir).name} keeps no calibration split; fit its "
                        "explainer on the file it was trained on "
                        "(`python main.py models --fit-explainer FILE`).")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def fit_and_save(registry: ModelRegistry, model_id: str | None = None,
                 texts: Sequence[str] | None = None, max_texts: int = DEFAULT_TEXTS,
                 progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None) -> AmortizedExplainer:
    """Fit the explainer of the active (or named) model on ``texts`` (None: the calibration
    split kept with the model) and publish it beside the model, signed with the registry's
    key; what the window, the CLI and the training window's follow-up all run. The returned
    explainer carries its id."""
    classifier = registry.classifier(model_id)
    model_dir = Path(classifier.path)
    chosen = kept_texts(model_dir) if texts is None else texts
    explainer = fit_explainer(classifier, chosen, max_texts=max_texts, progress=progress,
                              cancel=cancel)
    directory = save_explainer(explainer, model_dir, registry.trust)
    return replace(explainer, explainer_id=directory.name)


def save_explainer(explainer: AmortizedExplainer, model_dir: Path,
                   trust: ManifestTrust | None = None) -> Path:
    """Publish it beside the model, atomically, signed with ``trust``'s key when given."""
    from safetensors.numpy import save_file

    stamp = datetime.fromisoformat(explainer.record["created"]).strftime("%Y%m%d-%H%M%S")
    parent = Path(model_dir) / EXPLAINERS_DIR
    taken = {p.name for p in parent.iterdir()} if parent.is_dir() else set()
    explainer_id = next(f"{stamp}-{i}" for i in range(1, 10_000) if f"{stamp}-{i}" not in taken)

    def fill(directory: Path) -> None:
        arrays = {f"h{i}.{k}": np.ascontiguousarray(v)
                  for i, head in enumerate(explainer.heads) for k, v in head.arrays().items()}
        save_file(arrays, str(directory / HEAD_FILE))
        write_json(directory / RECORD_FILE, {**explainer.record, "enabled": explainer.enabled})

    sign = None if trust is None else (
        lambda scratch, name: trust.sign(scratch, explainer_subject(explainer.model_id, name)))
    return write_artifact(parent, fill, lambda _: explainer_id, sign)


def load_explainer(model_dir: Path, model_id: str, labels: Sequence[str],
                   trust: ManifestTrust | None = None) -> AmortizedExplainer | None:
    """The model's newest amortized explainer, verified; None when it has none."""
    dirs = sub_artifact_dirs(model_dir, EXPLAINERS_DIR)
    if not dirs:
        return None
    directory = dirs[-1]
    verify_artifact(directory, trust=trust, subject=explainer_subject(model_id, directory.name))
    record = read_json(directory / RECORD_FILE)
    if record.get("model_id") != model_id or record.get("labels") != list(labels):
        raise ModelIntegrityError(
            f"The amortized explainer {directory.name} was fitted for model "
            f"{record.get('model_id')} with labels {record.get('labels')}, not for model "
            f"{model_id} with labels {list(labels)}. Fit it again: "
            "`python main.py models --fit-explainer FILE`.")
    layers = tuple(int(k) for k in record.get("layers", ()))
    heads = _read_heads(directory, int(record.get("heads", 0)), len(labels))
    return AmortizedExplainer(heads, model_id, tuple(labels),
                              np.asarray(record["base"], dtype=np.float64),
                              bool(record.get("enabled")), record, directory.name, layers)


def _read_heads(directory: Path, count: int, classes: int) -> tuple[AmortizedHead, ...]:
    from safetensors.numpy import load_file

    arrays = load_file(str(directory / HEAD_FILE))
    names = ("norm_weight", "norm_bias", "w1", "b1", "w2", "b2")
    try:
        heads = tuple(AmortizedHead(**{k: arrays[f"h{i}.{k}"] for k in names})
                      for i in range(count))
    except KeyError as exc:
        raise ModelIntegrityError(f"The amortized explainer {directory.name} lacks {exc}; fit "
                                  "it again.") from exc
    if not heads or any(h.w2.shape[0] != classes or h.w1.shape[1] != h.norm_weight.shape[0]
                        for h in heads):
        raise ModelIntegrityError(f"The amortized explainer {directory.name} has no head, or "
                                  "one of the wrong shape for its model. Fit it again.")
    return heads
