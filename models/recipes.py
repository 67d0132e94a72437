"""How a model is trained: the recipe, chosen by the data size unless the user picks one.

Measured on the demo's splits (``benchmarks/bench_small_data.py``): SetFit
(``models.setfit_recipe``) wins macro-F1 at 8 to 64 training examples a class, the fine-tune
(``models.training``) with the whole split (170 a class); a seed ensemble of three fine-tunes
(``models.ensemble``) wins both macro-F1 and coverage there, at three times the training and
prediction time, so it is offered, never chosen by itself. Stacking with the TF-IDF baseline
(``models.stacking``) won on medical abstracts and banking77 and lost macro-F1 on the demo: under
``auto`` it is decided per model, on validation (``models.stacked_training``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.errors import DataError
from models.progress import CancelFlag, Progress, ProgressCallback

if TYPE_CHECKING:  # torch comes with them: the CLI's parser and the window read RECIPES
    from models.splits import Splits
    from models.training import FineTuneResult, TrainingConfig

AUTO, FINE_TUNE, SETFIT, ENSEMBLE = "auto", "fine-tune", "setfit", "ensemble"
STACKED = "stacked"  # the fine-tune stacked with the TF-IDF baseline (models.stacking)
RECIPES = (AUTO, FINE_TUNE, SETFIT, ENSEMBLE, STACKED)
# SetFit wins at up to 64 a class, the fine-tune at 170; between the two it was not measured,
# and SetFit's pairs (and minutes) grow with n.
SETFIT_BELOW_PER_CLASS = 100
RECIPE_CHOICES = (  # what the window and `train --recipe` offer
    (AUTO, f"By data size: SetFit below {SETFIT_BELOW_PER_CLASS} examples a class, else "
           "fine-tune; stacked with TF-IDF when that wins on validation"),
    (FINE_TUNE, "Fine-tune the encoder with a classification head"),
    (SETFIT, "SetFit: contrastive pairs, then a logistic-regression head"),
    (ENSEMBLE, "Ensemble of three fine-tunes (about 3× the training and prediction time)"),
    (STACKED, "Fine-tune stacked with the TF-IDF baseline (weights fitted on validation)"),
)


def choose_recipe(requested: str, train_labels: Sequence[str],
                  base_dir: Path | None = None) -> tuple[str, str]:
    """The recipe to train with and why (shown on the model card). A base encoder SetFit
    cannot use (not a plain BERT with mean pooling) sends ``auto`` to the fine-tune; asked
    for by name, a recipe the base cannot take is refused before any training."""
    if requested not in RECIPES:
        raise DataError(f"Unknown training recipe {requested!r}: choose one of "
                        f"{', '.join(RECIPES)}.")
    per_class = len(train_labels) / max(len(set(train_labels)), 1)
    if base_dir is not None:
        unusable = base_problem(base_dir, FINE_TUNE if requested in (AUTO, STACKED)
                                else requested)
        if unusable:
            raise DataError(unusable[0].upper() + unusable[1:])
    if requested != AUTO:
        return requested, f"asked for; {per_class:.0f} training examples a class"
    if per_class >= SETFIT_BELOW_PER_CLASS:
        return FINE_TUNE, (f"{per_class:.0f} training examples a class on average, at least "
                           f"{SETFIT_BELOW_PER_CLASS}; the fine-tune won with 170 a class on "
                           "the demo")
    setfit_unusable = None if base_dir is None else base_problem(base_dir, SETFIT)
    if setfit_unusable:
        return FINE_TUNE, (f"{per_class:.0f} training examples a class, but {setfit_unusable}")
    return SETFIT, (f"{per_class:.0f} training examples a class on average, fewer than "
                    f"{SETFIT_BELOW_PER_CLASS}; SetFit won at 8 to 64 a class on the demo")


def base_problem(base_dir: Path, recipe: str) -> str | None:
    """Why ``base_dir`` cannot be trained with ``recipe`` (None: it can), read from its
    config.json and modules.json without loading it."""
    import json

    from models.model_kinds import HEAD_MARKER

    try:
        config = json.loads((Path(base_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # transformers says what is wrong with it, in its own words
    if config.get(HEAD_MARKER):
        return (f"{base_dir} is a Casewise {config[HEAD_MARKER]} model, not an encoder to "
                "train from: choose the embedded encoder, a plain encoder folder or a "
                "fine-tuned model as the base.")
    if recipe in (SETFIT, ENSEMBLE) and config.get("model_type") != "bert":
        return (f"the {recipe} recipe saves BERT encoders only and {base_dir} is a "
                f"{config.get('model_type')!r} one: choose the fine-tune recipe.")
    if recipe == SETFIT:
        from models.setfit_recipe import sentence_modules_problem

        return sentence_modules_problem(Path(base_dir))
    return None


def train_by_recipe(base_dir: Path, splits: Splits, labels: list[str], config: TrainingConfig,
                    progress: ProgressCallback | None = None, cancel: CancelFlag | None = None
                    ) -> tuple[FineTuneResult, tuple[str, str]]:
    """The model trained as ``config.recipe`` (or the data size) says; the recipe and why."""
    from models.training import FineTuneResult, fine_tune

    recipe = choose_recipe(config.recipe, list(splits.train.labels), base_dir)
    if recipe[0] == SETFIT:
        from models.setfit_recipe import setfit_train

        model, tokenizer, seconds = setfit_train(base_dir, splits.train.texts,
                                                 splits.train.labels, labels, config,
                                                 progress, cancel)
        # One pass, no epochs to choose: the validation split fits the temperature only.
        return FineTuneResult(model, tokenizer, [], 1, seconds), recipe
    if recipe[0] == ENSEMBLE:
        return train_ensemble(base_dir, splits, labels, config, progress, cancel), recipe
    return fine_tune(base_dir, splits, labels, config, progress, cancel), recipe


def train_ensemble(base_dir: Path, splits: Splits, labels: list[str], config: TrainingConfig,
                   progress: ProgressCallback | None, cancel: CancelFlag | None
                   ) -> FineTuneResult:
    """``ENSEMBLE_SIZE`` fine-tunes from consecutive seeds, kept as one ``SeedEnsemble``."""
    from models.ensemble import ENSEMBLE_SIZE, as_ensemble
    from models.training import FineTuneResult, fine_tune

    members: list[FineTuneResult] = []
    for i in range(ENSEMBLE_SIZE):
        members.append(fine_tune(base_dir, splits, labels,
                                 dataclasses.replace(config, seed=config.seed + i),
                                 _member_progress(progress, i, ENSEMBLE_SIZE), cancel))
    history = [{**row, "member": i + 1} for i, m in enumerate(members) for row in m.history]
    return FineTuneResult(as_ensemble([m.model for m in members]), members[0].tokenizer,
                          history, members[0].best_epoch, sum(m.seconds for m in members))


def _member_progress(progress: ProgressCallback | None, index: int,
                     size: int) -> ProgressCallback | None:
    """One bar for the whole ensemble: member ``index``'s steps counted after the earlier
    members', and the time left including the members still to train (as long as this one)."""
    if progress is None:
        return None

    def report(p: Progress) -> None:
        eta = None if p.eta_seconds is None else (
            p.eta_seconds + (size - 1 - index) * (p.elapsed_seconds + p.eta_seconds))
        progress(dataclasses.replace(
            p, stage=f"{p.stage} (member {index + 1} of {size})",
            done=index * p.total + p.done, total=size * p.total, eta_seconds=eta))

    return report

