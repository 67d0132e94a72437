"""Temperature scaling (Guo et al., 2017): one scalar that softens or sharpens the logits.

It leaves the predicted label unchanged and is fitted on the validation split by minimising
the negative log-likelihood.
"""

from __future__ import annotations

import numpy as np

# Bounds on log(T): T from about 0.05 to 20 covers any sane network.
LOG_T_BOUNDS = (-3.0, 3.0)


def calibrated_probabilities(logits: np.ndarray, temperature: float) -> np.ndarray:
    # scipy.special.softmax's arithmetic, without importing scipy (~0.3 s) in every process
    # that classifies a case.
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    shifted = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises NLL of ``softmax(logits / T)`` on (logits, y)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(y))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, y].mean())

    result = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(result.x))
