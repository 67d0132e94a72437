"""What the store tests store: records shaped like the domain objects' ``to_dict()``.

The ``db`` and ``store`` fixtures they share are in ``conftest.py``.
"""

from __future__ import annotations

LABELS = ("negative", "neutral", "positive")


def prediction(label: str = "negative", confidence: float = 0.8, model_id: str = "m1") -> dict:
    rest = (1 - confidence) / 2
    probabilities = {name: (confidence if name == label else rest) for name in LABELS}
    return {"label": label, "probabilities": probabilities, "margin": confidence - rest,
            "model_id": model_id, "truncated": False, "n_tokens": 12,
            "prediction_set": (label,)}  # a tuple, as Prediction.to_dict can hold


def escalation(decision: str = "escalate") -> dict:
    return {"decision": decision, "reasons": ["confidence below the certified threshold"],
            "reason_codes": ["low_confidence"], "label": "negative", "confidence": 0.55,
            "threshold": 0.8, "alpha": 0.1, "delta": 0.1, "prediction_set": ["negative"],
            "set_score": "lac", "ood_score": 0.2, "ood_threshold": float("inf"),
            "n_calibration": 12, "calibrated_on": "split", "policy_id": "p-1",
            "guarantee": "error among AUTO cases <= 10% with probability >= 90%"}


def attribution() -> dict:
    return {"label": "negative", "method": "partition", "budget": 98, "base_values": [0.3],
            "features": [{"text": "rash", "start": 4, "end": 8, "values": {"negative": 0.4}}],
            "faithfulness": {"comprehensiveness": 0.5, "sufficiency": -0.1}, "flip": None}


def opinion() -> dict:
    return {"backend": "embedded", "model": "SmolLM2-135M", "base_url": None,
            "text": "The rash suggests a bad experience.", "label": "negative",
            "sent_text": "Case: The rash came back ...", "sent_sha256": "ab" * 32,
            "check": [], "error": None, "ai_generated": True}
