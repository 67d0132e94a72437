"""The plain types that cross the seams between layers (DESIGN.md, "Seams").

Frozen dataclasses, serialisable to JSON with ``to_dict`` for the store, the CLI and the PDF.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CaseInput:
    """One case as the user gave it: the text, where it came from, and free metadata."""

    text: str
    source: str = "typed"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one case.

    ``probabilities`` are temperature-calibrated; ``margin`` is the gap between the top two.
    ``truncated`` says the text was longer than the model's window and its tail was not read.
    ``prediction_set`` is filled by the escalation policy (conformal sets), when one is fitted.
    """

    label: str
    probabilities: dict[str, float]
    margin: float
    model_id: str
    truncated: bool
    n_tokens: int
    prediction_set: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.prediction_set is not None:
            data["prediction_set"] = list(self.prediction_set)
        return data
