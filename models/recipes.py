"""How a model is trained: the recipe, chosen by the data size unless the user picks one.

Measured on the demo's splits (``benchmarks/bench_small_data.py``): SetFit
(``models.setfit_recipe``) wins macro-F1 at 8 to 64 training examples a class, the fine-tune
(``models.training``) with the whole split (170 a class); a seed ensemble of three fine-tunes
(``models.ensemble``) wins both macro-F1 and coverage there, at three times the training and
prediction time, so it is offered, never chosen by itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from models.errors import DataError
from models.progress import CancelFlag, ProgressCallback
from models.splits import Splits
from models.training import FineTuneResult, TrainingConfig, fine_tune

AUTO, FINE_TUNE, SETFIT, ENSEMBLE = "auto", "fine-tune", "setfit", "ensemble"
RECIPES = (AUTO, FINE_TUNE, SETFIT, ENSEMBLE)
# SetFit wins at up to 64 a class, the fine-tune at 170; between the two it was not measured,
# and SetFit's pairs (and minutes) grow with n.
SETFIT_BELOW_PER_CLASS = 100
RECIPE_CHOICES = (  # what the window and `train --recipe` offer
    (AUTO, f"By data size: SetFit below {SETFIT_BELOW_PER_CLASS} examples a class, else fine-tune"),
    (FINE_TUNE, "Fine-tune the encoder with a classification head"),
    (SETFIT, "SetFit: contrastive pairs, then a logistic-regression head"),
    (ENSEMBLE, "Ensemble of three fine-tunes (about 3× the training and prediction time)"),
)


def choose_recipe(requested: str, train_labels: Sequence[str]) -> tuple[str, str]:
    """The recipe to train with and why (shown on the model card)."""
    if requested not in RECIPES:
        raise DataError(f"Unknown training recipe {requested!r}: choose one of "
                        f"{', '.join(RECIPES)}.")
    per_class = len(train_labels) / max(len(set(train_labels)), 1)
    if requested != AUTO:
        return requested, f"asked for; {per_class:.0f} training examples a class"
    if per_class < SETFIT_BELOW_PER_CLASS:
        return SETFIT, (f"{per_class:.0f} training examples a class on average, fewer than "
                        f"{SETFIT_BELOW_PER_CLASS}: SetFit beat the fine-tune there")
    return FINE_TUNE, (f"{per_class:.0f} training examples a class on average, at least "
                       f"{SETFIT_BELOW_PER_CLASS}: the fine-tune beat SetFit there")


def train_by_recipe(base_dir: Path, splits: Splits, labels: list[str], config: TrainingConfig,
                    progress: ProgressCallback | None = None, cancel: CancelFlag | None = None
                    ) -> tuple[FineTuneResult, tuple[str, str]]:
    """The model trained as ``config.recipe`` (or the data size) says; the recipe and why."""
    recipe = choose_recipe(config.recipe, list(splits.train.labels))
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

    members: list[FineTuneResult] = []
    for i in range(ENSEMBLE_SIZE):
        def member_progress(p, i=i):
            if progress is not None:
                progress(dataclasses.replace(
                    p, stage=f"{p.stage} (member {i + 1} of {ENSEMBLE_SIZE})"))

        members.append(fine_tune(base_dir, splits, labels,
                                 dataclasses.replace(config, seed=config.seed + i),
                                 member_progress, cancel))
    history = [{**row, "member": i + 1} for i, m in enumerate(members) for row in m.history]
    return FineTuneResult(as_ensemble([m.model for m in members]), members[0].tokenizer,
                          history, members[0].best_epoch, sum(m.seconds for m in members))
