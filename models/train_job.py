"""One training run, end to end: data -> splits -> fine-tune -> calibrate -> evaluate beside the
baseline -> model directory with card and manifest -> registry.

Checks that can fail (data, data directory) run before the minutes of fine-tuning.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from models import data as data_io
from models.artifact import (
    META_FILE,
    remove_partials,
    sha256_file,
    write_artifact,
    write_json,
)
from models.baseline import BASELINE_DESCRIPTION, baseline_probabilities, fit_baseline
from models.calibration import calibrated_probabilities, fit_temperature
from models.classifier import STACKED_FORMAT, CaseScores
from models.embedded import BASE_ENCODER, base_encoder_dir
from models.errors import DataError
from models.escalation import fit_policy, save_policy
from models.escalation_evidence import evaluate_policy
from models.inference import EncodedTexts, encode, forward_outputs
from models.metrics import (
    classification_report,
    expected_calibration_error,
    negative_log_likelihood,
)
from models.model_card import INTENDED_USE, comparison_sentence, limitations, render_markdown
from models.progress import CancelFlag, Progress, ProgressCallback
from models.recipes import train_by_recipe
from models.registry import ModelRecord, ModelRegistry
from models.splits import Splits, split_one_file, split_train_and_test
from models.stacked_training import stack_if_asked
from models.training import FineTuneResult, TrainingConfig

HELD_OUT_SPLITS = ("calibration", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """What to train on: the demo data, or the user's file (and optionally a test file)."""

    name: str
    path: Path | None = None
    text_col: str = "text"
    label_col: str = "label"
    encoding: str | None = None
    test_path: Path | None = None

    @classmethod
    def demo(cls) -> DatasetSpec:
        return cls(data_io.DEMO_NAME)


def load_splits(spec: DatasetSpec, seed: int) -> tuple[Splits, list[dict]]:
    """Read and split the data; returns the splits and a load report per source file."""
    if spec.path is None:
        (train, train_report), (test, test_report) = data_io.load_demo()
        splits = split_train_and_test(train, train_report.source, test, test_report.source, seed)
        return splits, [train_report.to_dict(), test_report.to_dict()]
    data, report = data_io.load_labeled(spec.path, spec.text_col, spec.label_col, spec.encoding)
    if spec.test_path is None:
        with _saying_what_was_dropped(report):
            return split_one_file(data, str(spec.path), seed), [report.to_dict()]
    test, test_report = data_io.load_labeled(
        spec.test_path, spec.text_col, spec.label_col, spec.encoding
    )
    splits = split_train_and_test(data, str(spec.path), test, str(spec.test_path), seed)
    return splits, [report.to_dict(), test_report.to_dict()]


def training_texts(spec: DatasetSpec, config: TrainingConfig | None = None) -> list[str]:
    """The texts a model trained on ``spec`` with ``config`` learned from, stopped on and was
    calibrated on — every split but the test split (the same seeded split as training): what
    its amortized explainer is fitted on."""
    splits, _ = load_splits(spec, (config or TrainingConfig()).seed)
    return [*splits.train.texts, *splits.validation.texts, *splits.calibration.texts]


@contextmanager
def _saying_what_was_dropped(report) -> Iterator[None]:
    """A refusal of the rows that are left also says how many repeated texts were dropped:
    a file of one text repeated is otherwise refused for a reason that hides it."""
    try:
        yield
    except DataError as exc:
        if not report.dropped_duplicates:
            raise
        conflicts = (f", {report.conflicting_duplicates:,} of them with another label"
                     if report.conflicting_duplicates else "")
        raise DataError(f"{exc} ({report.dropped_duplicates:,} of {report.rows_read:,} rows "
                        f"repeat an earlier row's text and were dropped{conflicts}.)") from exc


def _stage(progress: ProgressCallback | None, stage: str) -> None:
    if progress is not None:
        progress(Progress(stage, 0, 1))


@dataclass(frozen=True)
class SplitScores:
    """The trained model's view of the held-out splits, for the escalation policy."""

    scores: dict[str, CaseScores]
    truth: dict[str, np.ndarray]


@dataclass(frozen=True)
class SplitOutputs:
    """The trained encoder's logits for validation, calibration and test (embeddings of the
    held-out two), with how each text was read."""

    logits: dict[str, np.ndarray]
    embeddings: dict[str, np.ndarray]
    encodings: dict[str, EncodedTexts]
    truth: dict[str, np.ndarray]


def split_outputs(result: FineTuneResult, splits: Splits, labels: list[str], max_length: int,
                  cancel: CancelFlag | None, pooling: str = "first") -> SplitOutputs:
    index = {label: i for i, label in enumerate(labels)}
    outputs = SplitOutputs({}, {}, {}, {})
    for name in ("validation", *HELD_OUT_SPLITS):
        part = getattr(splits, name)
        outputs.encodings[name] = encode(result.tokenizer, list(part.texts), max_length, pooling)
        outputs.logits[name], outputs.embeddings[name] = forward_outputs(
            result.model, outputs.encodings[name], result.tokenizer.pad_token_id,
            cancel=cancel, embeddings=name in HELD_OUT_SPLITS, pooling=pooling)
        outputs.truth[name] = np.array([index[y] for y in part.labels])
    return outputs


def evaluate_splits(result: FineTuneResult, splits: Splits, labels: list[str],
                    max_length: int, cancel: CancelFlag | None, pooling: str = "first"):
    """The temperature, metrics per split and held-out scores of the encoder alone."""
    outputs = split_outputs(result, splits, labels, max_length, cancel, pooling)
    return evaluate_outputs(outputs, outputs.logits, labels)


def evaluate_outputs(outputs: SplitOutputs, logits: dict[str, np.ndarray], labels: list[str]):
    """The temperature fitted on validation ``logits``; metrics per split; and the calibrated
    scores (with embeddings) of the held-out splits."""
    truth, encodings = outputs.truth, outputs.encodings
    temperature = fit_temperature(logits["validation"], truth["validation"])
    held_out = SplitScores(
        {name: CaseScores(calibrated_probabilities(logits[name], temperature),
                          outputs.embeddings[name],
                          np.array(encodings[name].truncated, dtype=bool),
                          np.array(encodings[name].full_lengths),
                          np.array(encodings[name].n_windows))
         for name in HELD_OUT_SPLITS},
        {name: truth[name] for name in HELD_OUT_SPLITS})
    metrics = {}
    for name, values in logits.items():
        raw = calibrated_probabilities(values, 1.0)
        calibrated = calibrated_probabilities(values, temperature)
        metrics[name] = {
            **classification_report(calibrated, truth[name], labels),
            "ece_before": expected_calibration_error(raw, truth[name]),
            "ece_after": expected_calibration_error(calibrated, truth[name]),
            "nll_before": negative_log_likelihood(raw, truth[name]),
            "nll_after": negative_log_likelihood(calibrated, truth[name]),
        }
    return temperature, metrics, held_out


def fit_tfidf(splits: Splits, labels: list[str], seed: int) -> tuple[Pipeline, float]:
    """The TF-IDF baseline fitted on train, its C chosen on validation."""
    index = {label: i for i, label in enumerate(labels)}
    return fit_baseline(list(splits.train.texts), np.array([index[y] for y in splits.train.labels]),
                        list(splits.validation.texts),
                        np.array([index[y] for y in splits.validation.labels]), seed)


def evaluate_baseline(tfidf: tuple[Pipeline, float], splits: Splits, labels: list[str]) -> dict:
    index = {label: i for i, label in enumerate(labels)}
    pipeline, c = tfidf
    report: dict = {"description": BASELINE_DESCRIPTION, "C": c}
    for name in ("validation", *HELD_OUT_SPLITS):
        part = getattr(splits, name)
        report[name] = classification_report(
            baseline_probabilities(pipeline, list(part.texts), len(labels)),
            np.array([index[y] for y in part.labels]), labels)
    return report


def _training_data(spec: DatasetSpec, splits: Splits, reports: list[dict]) -> dict:
    return {
        "name": spec.name,
        "files": reports,
        "rows": splits.recipe.sizes(),
        "class_counts": {name: part.class_counts() for name, part in splits.by_name().items()},
        "split_recipe": splits.recipe.to_dict(),
    }


def _base_model_info(base_dir: Path) -> dict:
    return {
        "name": "sentence-transformers/all-MiniLM-L6-v2",
        "package": f"{BASE_ENCODER.distribution}=={BASE_ENCODER.version}",
        "license": "Apache-2.0",
        "weights_sha256": sha256_file(base_dir / "model.safetensors"),
    }


def _write_held_out(directory: Path, splits: Splits) -> None:
    """Keep the calibration and test rows with the model: the escalation policy is fitted on
    the first and evaluated on the second, long after the source file may have moved."""
    (directory / "splits").mkdir()
    for name in HELD_OUT_SPLITS:
        part = getattr(splits, name)
        lines = [json.dumps({"row": r, "text": t, "label": y}, ensure_ascii=False)
                 for r, t, y in zip(part.row_numbers, part.texts, part.labels, strict=True)]
        (directory / "splits" / f"{name}.jsonl").write_text("\n".join(lines) + "\n",
                                                            encoding="utf-8")


def train_and_save(
    spec: DatasetSpec,
    registry: ModelRegistry,
    config: TrainingConfig | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
    activate: bool = True,
    base_dir: Path | None = None,
) -> ModelRecord:
    """Train, evaluate and publish a model; activate it if asked (or if none is active), unless
    it is no better than chance (``chance_test``): then it is kept but not activated, and the
    returned record's ``chance_warning`` says why. Nothing is kept on failure."""
    config = config or TrainingConfig()
    registry.ensure_writable()
    base_dir = base_dir or base_encoder_dir()
    _stage(progress, "loading data")
    splits, reports = load_splits(spec, config.seed)
    labels = splits.labels()
    with quiet_metrics():
        result, recipe = train_by_recipe(base_dir, splits, labels, config, progress, cancel)
        _stage(progress, "evaluating")
        outputs = split_outputs(result, splits, labels, config.max_length, cancel,
                                config.pooling)
        _stage(progress, "fitting the baseline")
        tfidf = fit_tfidf(splits, labels, config.seed)
        baseline = evaluate_baseline(tfidf, splits, labels)
        stacked = stack_if_asked(recipe[0], config, result, outputs, splits, labels, tfidf)
        temperature, metrics, held_out = evaluate_outputs(outputs, stacked.logits, labels)
    chance = chance_test(metrics["test"], splits.test.labels)
    created = datetime.now(UTC).replace(microsecond=0).isoformat()
    _stage(progress, "saving")
    remove_partials(registry.models_dir)

    def fill(directory: Path) -> None:
        result.model.save_pretrained(directory)
        result.tokenizer.save_pretrained(directory)
        if stacked.stacking is not None:
            stacked.stacking.save(directory, stacked.tfidf_description or {}, stacked.decision)
        hashes = {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()}
        model_id = _model_id(created, hashes["model.safetensors"])
        policy = fit_policy(held_out.scores["calibration"], held_out.truth["calibration"],
                            labels, model_id, created=created)
        escalation = evaluate_policy(policy, held_out.scores["test"], held_out.truth["test"])
        card = {
            "model_id": model_id,
            "created": created,
            "intended_use": INTENDED_USE,
            "labels": labels,
            "base_model": {**_base_model_info(base_dir), "path": str(base_dir)},
            "training_data": _training_data(spec, splits, reports),
            "training": {"recipe": recipe[0], "recipe_reason": recipe[1],
                         "config": config.to_dict(), "epochs_run": len(result.history),
                         "best_epoch": result.best_epoch, "seconds": round(result.seconds, 1),
                         "history": result.history, "temperature": temperature,
                         "stacking": stacked.decision},
            "metrics": metrics,
            "baseline": baseline,
            "comparison": comparison_sentence(metrics["test"], baseline["test"]),
            "chance_test": chance,
            "escalation": escalation,
            "hashes": hashes,
        }
        card["limitations"] = limitations(card)
        write_json(directory / "model_card.json", card)
        (directory / "MODEL_CARD.md").write_text(render_markdown(card), encoding="utf-8")
        write_json(directory / META_FILE, {
            "format": STACKED_FORMAT if stacked.stacking else 1, "id": model_id,
            "created": created, "labels": labels, "stacked": stacked.stacking is not None,
            ("stacked_temperature" if stacked.stacking else "temperature"): temperature,
            "max_length": config.max_length,
            "pooling": config.pooling,
            "training_data": {"name": spec.name}, "metrics": {"test": metrics["test"]},
            "chance_test": chance,
        })
        _write_held_out(directory, splits)
        save_policy(policy, directory, registry.trust)

    with quiet_metrics():  # the escalation policy is fitted in ``fill``
        path = write_artifact(registry.models_dir, fill,
                              lambda d: json.loads((d / META_FILE).read_text())["id"],
                              sign=registry.sign_new)  # signed before it looks like a model
    # A model no better than chance is saved, to be looked at, but never made active (its
    # ``chance_warning`` says why). Otherwise: if asked, or if none is active (a broken
    # ``active.json`` is left for the user to fix).
    if chance["passed"] and (activate or registry.active_pointer() == (None, None)):
        registry.activate(path.name)
    return registry.record(path.name)


# A model is put to work only if its test accuracy beats always answering the test split's
# commonest label, by a one-sided exact binomial test at this level.
CHANCE_ALPHA = 0.05


def chance_test(test: dict, truth: tuple[str, ...] | list[str]) -> dict:
    """Is the test accuracy better than chance? Chance is the accuracy of always answering the
    test split's commonest label (at least 1/k for k labels). Under the null hypothesis each
    of the n test cases is right with that probability; the model passes if getting at least
    as many right as it did has probability below ``CHANCE_ALPHA`` (exact binomial test)."""
    from scipy.stats import binomtest

    n = int(test["n"])
    correct = round(test["accuracy"] * n)
    majority_label, majority = Counter(truth).most_common(1)[0] if n else ("", 0)
    rate = majority / n if n else 1.0
    p_value = float(binomtest(correct, n, rate, alternative="greater").pvalue) if n else 1.0
    passed = p_value < CHANCE_ALPHA
    message = None if passed else (
        f"Not better than chance: test accuracy {correct / max(n, 1):.3f} ({correct} of {n}) "
        f"is not significantly above {rate:.3f}, what always answering {majority_label!r} "
        f"scores (one-sided binomial test, p = {p_value:.2g}, needs < {CHANCE_ALPHA}). "
        "The model is saved but not made active. More rows per label, fewer labels, or "
        "checking --label-col usually helps."
    )
    return {"test": "one-sided exact binomial test of test accuracy against the "
                    "commonest-label rate", "alpha": CHANCE_ALPHA, "n": n, "correct": correct,
            "chance_rate": rate, "chance_label": majority_label, "p_value": p_value,
            "passed": passed, "message": message}


@contextmanager
def quiet_metrics():
    """scikit-learn's and MAPIE's UserWarnings about small or odd splits (a class with no case
    in a split, more classes than half the cases) would reach the terminal as noise: what they
    warn of is in the metrics (zero support) and in the chance test, which says it in words."""
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        for library in ("sklearn", "mapie"):
            warnings.filterwarnings("ignore", category=UserWarning, module=rf"{library}(\.|$)")
        warnings.filterwarnings("ignore", category=UndefinedMetricWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message=r".*least populated")
        yield


def read_held_out(model_dir: Path, name: str) -> tuple[list[str], list[str]]:
    """The texts and labels of a held-out split kept with the model."""
    path = Path(model_dir) / "splits" / f"{name}.jsonl"
    if not path.is_file():
        raise DataError(f"Model {Path(model_dir).name} has no {name} split ({path} is "
                        "missing); give cases with --data instead.")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def _model_id(created: str, weights_sha256: str) -> str:
    stamp = datetime.fromisoformat(created).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{weights_sha256[:8]}"

