"""What the store tests store: real domain records (``Prediction``, ``Attribution``, ...), as
the pipeline makes them; the store refuses anything else.

The ``db`` and ``store`` fixtures they share are in ``conftest.py``.
"""

from __future__ import annotations

from explainers.types import Attribution, Faithfulness, Feature, LLMOpinion
from models.types import EscalationDecision, Prediction

LABELS = ("negative", "neutral", "positive")


def prediction(label: str = "negative", confidence: float = 0.8,
               model_id: str = "m1") -> Prediction:
    rest = (1 - confidence) / 2
    probabilities = {name: (confidence if name == label else rest) for name in LABELS}
    return Prediction(label=label, probabilities=probabilities, margin=confidence - rest,
                      model_id=model_id, truncated=False, n_tokens=12,
                      prediction_set=(label,))


def escalation(decision: str = "escalate") -> EscalationDecision:
    return EscalationDecision(
        decision=decision, reasons=("confidence below the certified threshold",),
        reason_codes=("low_confidence",), label="negative", confidence=0.55, threshold=0.8,
        alpha=0.1, delta=0.1, prediction_set=("negative",), set_score="lac", ood_score=0.2,
        ood_threshold=float("inf"), n_calibration=12, calibrated_on="split", policy_id="p-1",
        guarantee="error among AUTO cases <= 10% with probability >= 90%")


def attribution() -> Attribution:
    values = {"negative": 0.4, "neutral": -0.1, "positive": -0.3}
    base = {"negative": 0.4, "neutral": 0.2, "positive": 0.4}
    return Attribution(
        label="negative", explained_class="negative", classes=LABELS,
        probabilities={c: base[c] + values[c] for c in LABELS}, base_values=base,
        features=(Feature("rash", 4, 8, values),), method="partition", context="empty",
        masking="delete", precision="float32", budget=98, model_calls=40, seconds=0.2,
        seen_chars=20, text_chars=20,
        faithfulness=Faithfulness(0.5, -0.1, 20, "the words matter"))


def opinion() -> LLMOpinion:
    return LLMOpinion(
        backend="embedded", model="SmolLM2-135M", base_url=None,
        text="The rash suggests a bad experience.", raw_text="{...}", label="negative",
        cited_words=("rash",), check=(), parse="guided",
        sent_text="Case: The rash came back ...", sent_sha256="ab" * 32, redactions=(),
        case_trimmed=False, prompt_version="second-opinion/1", prompt_sha256="cd" * 32,
        tokens_in=100, tokens_out=20, first_token_seconds=0.5, seconds=2.0, error=None)
