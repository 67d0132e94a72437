"""Whether a model in training is stacked with the TF-IDF baseline (``models.stacking``), and
the stacked logits of its evaluation splits if it is.

``stacked`` asks for it; ``auto`` stacks when out-of-fold predictions on the validation split
win by the margin; a recipe asked for by name (fine-tune, SetFit, ensemble) is never stacked.
The weights are fitted on validation, as the temperature is after them: the calibration split
that certifies the escalation policy is never used to fit anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.baseline import BASELINE_DESCRIPTION
from models.classifier import Classifier
from models.recipes import AUTO, STACKED
from models.stacking import Stacker, Stacking, TfidfModel, stacking_decision

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from models.splits import Splits
    from models.train_job import SplitOutputs
    from models.training import FineTuneResult, TrainingConfig


@dataclass(frozen=True)
class StackingOutcome:
    """The logits to calibrate and evaluate, the stacking to save (None: not stacked) and the
    decision's numbers (None: stacking was not considered)."""

    logits: dict[str, np.ndarray]
    stacking: Stacking | None = None
    decision: dict | None = None
    tfidf_description: dict | None = None


def stack_if_asked(recipe: str, config: TrainingConfig, result: FineTuneResult,
                   outputs: SplitOutputs, splits: Splits, labels: list[str],
                   tfidf: tuple[Pipeline, float]) -> StackingOutcome:
    if recipe != STACKED and config.recipe != AUTO:
        return StackingOutcome(outputs.logits)
    reader = Classifier(result.model, result.tokenizer, labels, 1.0, "in training",
                        config.max_length, pooling=config.pooling)
    model = TfidfModel.from_pipeline(tfidf[0], len(labels))
    log_probs = {
        name: model.log_probabilities(reader.tfidf_texts(list(getattr(splits, name).texts),
                                                         outputs.encodings[name].truncated))
        for name in outputs.logits
    }
    truth = outputs.truth["validation"]
    decision = stacking_decision(outputs.logits["validation"], log_probs["validation"], truth,
                                 config.seed, forced=recipe == STACKED)
    if not decision["stack"]:
        return StackingOutcome(outputs.logits, decision=decision)
    stacker = Stacker.fit(outputs.logits["validation"], log_probs["validation"], truth)
    decision["weights"] = stacker.to_dict()
    stacked = {name: stacker.combine(outputs.logits[name], log_probs[name])
               for name in outputs.logits}
    return StackingOutcome(stacked, Stacking(model, stacker), decision,
                           {"description": BASELINE_DESCRIPTION, "C": tfidf[1],
                            "vocabulary_size": len(model.vocabulary)})
