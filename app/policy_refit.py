"""Refit the escalation policy for new α and δ: what ``python main.py calibrate`` does with
the calibration split kept with the model, as a function with progress and cancel.

The new policy is saved beside the model (older ones stay as the record), signed with this
installation's key as every policy the application loads must be; the caller reloads
the workbench to use it and files ``record_policy_refitted`` in the audit trail with
``refit_details``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from models.errors import DataError
from models.progress import CancelFlag, ProgressCallback, raise_if_cancelled

SOURCE = "calibration split"


def refit_policy(bench, alpha: float, delta: float, progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None):
    """Fit and save a policy for ``bench``'s model at (α, δ); returns the saved
    ``EscalationPolicy``. The set score and always-review labels of the current policy are
    kept, so only what the user changed changes."""
    from app.casework import model_trust
    from models.escalation import EscalationSettings, fit_policy, save_policy
    from models.train_job import read_held_out

    classifier = bench.classifier
    kept = bench.policy.settings if bench.policy is not None else EscalationSettings()
    settings = replace(kept, alpha=float(alpha), delta=float(delta))
    settings.check(classifier.labels)
    texts, labels = read_held_out(classifier.path, "calibration")
    unknown = sorted(set(labels) - set(classifier.labels))
    if unknown:
        raise DataError(f"Labels {unknown} of the calibration split are not the model's "
                        f"labels {classifier.labels}; retrain the model.")
    truth = np.array([classifier.labels.index(y) for y in labels])
    scores = classifier.scores(texts, progress=progress, cancel=cancel)
    raise_if_cancelled(cancel)
    policy = fit_policy(scores, truth, classifier.labels, classifier.model_id, settings, SOURCE)
    save_policy(policy, classifier.path, model_trust())
    return policy


def refit_details(policy, source: str = SOURCE) -> dict:
    """What the audit event of a refit records (the same as ``calibrate`` files)."""
    return {"threshold": policy.threshold, "n_calibration": policy.n_calibration,
            "calibrated_on": source, "guarantee": policy.guarantee,
            "settings": policy.to_record().get("settings")}
