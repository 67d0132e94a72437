"""The plain types that cross the seams between layers (DESIGN.md, "Seams").

Frozen dataclasses with ``to_dict``/``from_dict`` and a schema version, in a module that imports
nothing heavy (no numpy, torch or shap): the store, the PDF and the views use them cheaply.
``from_dict`` reads what ``to_dict`` wrote, in this version or an older one, and refuses
anything else with a ``RecordError`` that says what is wrong — so a record of the wrong shape
never reaches the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from models.errors import CasewiseError

SCHEMA_KEY = "schema_version"


class RecordError(CasewiseError, ValueError):
    """A record (stored, read or received) does not have the shape of its type."""


# -- helpers every seam type uses ---------------------------------------------------------------

def check_schema(data: Any, kind: str, newest: int) -> dict[str, Any]:
    """``data`` as a dict, after checking it is a mapping of a schema this code can read.
    Records written before schemas were versioned carry none and read as version 1."""
    if not isinstance(data, Mapping):
        raise RecordError(f"A {kind} must be a mapping, not a {type(data).__name__}.")
    version = data.get(SCHEMA_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RecordError(f"A {kind} has schema version {version!r}, which is not a version.")
    if version > newest:
        raise RecordError(f"This {kind} was written by a newer Casewise (schema {version}; "
                          f"this one reads up to {newest}): update Casewise to read it.")
    return dict(data)


def require(data: Mapping[str, Any], key: str, kind: str, types: type | tuple[type, ...],
            optional: bool = False) -> Any:
    """``data[key]``, checked to be one of ``types`` (``None`` allowed when ``optional``)."""
    if key not in data or data[key] is None:
        if optional:
            return None
        raise RecordError(f"A {kind} needs '{key}'.")
    value = data[key]
    numeric = types in (float, (int, float))
    if numeric and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if types is float else value
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise RecordError(f"A {kind}'s '{key}' must be a {_names(types)}, not a bool.")
    if not isinstance(value, types):
        raise RecordError(f"A {kind}'s '{key}' must be a {_names(types)}, "
                          f"not a {type(value).__name__}.")
    return value


def _names(types: type | tuple[type, ...]) -> str:
    items = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in items)


def label_values(data: Mapping[str, Any], key: str, kind: str) -> dict[str, float]:
    """A mapping of label to number (probabilities, base values, a word's values)."""
    values = require(data, key, kind, dict)
    out = {}
    for label, value in values.items():
        if not isinstance(label, str) or isinstance(value, bool) or \
                not isinstance(value, int | float):
            raise RecordError(f"A {kind}'s '{key}' must map each label to a number; "
                              f"{label!r} maps to {value!r}.")
        out[label] = float(value)
    return out


def strings(data: Mapping[str, Any], key: str, kind: str, optional: bool = False
            ) -> tuple[str, ...] | None:
    value = require(data, key, kind, (list, tuple), optional)
    if value is None:
        return None
    if not all(isinstance(item, str) for item in value):
        raise RecordError(f"A {kind}'s '{key}' must be a list of strings.")
    return tuple(value)


def known_fields(cls: type, data: Mapping[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


# -- the seam types of the model layer ----------------------------------------------------------

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
    ``truncated`` says the tail of the text was not read: longer than the model's window (a
    model that reads one window) or than the read limit of a model that pools its windows.
    ``windows`` is how many windows were read and pooled (1 for a short text).
    ``prediction_set`` is filled by the escalation policy (conformal sets), when one is fitted.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "prediction"

    label: str
    probabilities: dict[str, float]
    margin: float
    model_id: str
    truncated: bool
    n_tokens: int
    prediction_set: tuple[str, ...] | None = None
    windows: int = 1

    @property
    def confidence(self) -> float:
        return self.probabilities[self.label]

    @property
    def labels(self) -> list[str]:
        return list(self.probabilities)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.prediction_set is not None:
            data["prediction_set"] = list(self.prediction_set)
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        probabilities = label_values(data, "probabilities", kind)
        label = require(data, "label", kind, str)
        if label not in probabilities:
            raise RecordError(f"A prediction's label {label!r} is not among its probabilities.")
        return cls(label=label, probabilities=probabilities,
                   margin=require(data, "margin", kind, float),
                   model_id=require(data, "model_id", kind, str),
                   truncated=require(data, "truncated", kind, bool),
                   n_tokens=require(data, "n_tokens", kind, int),
                   prediction_set=strings(data, "prediction_set", kind, optional=True),
                   windows=require(data, "windows", kind, int, optional=True) or 1)


AUTO, ESCALATE = "auto", "escalate"


@dataclass(frozen=True)
class EscalationDecision:
    """AUTO or ESCALATE for one case, with every reason and the guarantee behind it."""

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "escalation decision"

    decision: str
    reasons: tuple[str, ...]
    reason_codes: tuple[str, ...]
    label: str
    confidence: float
    threshold: float | None
    alpha: float | None
    delta: float | None
    prediction_set: tuple[str, ...]
    set_score: str
    ood_score: float
    ood_threshold: float
    n_calibration: int
    calibrated_on: str
    policy_id: str
    guarantee: str

    @property
    def auto(self) -> bool:
        return self.decision == AUTO

    @property
    def escalated(self) -> bool:
        return not self.auto

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("reasons", "reason_codes", "prediction_set"):
            data[key] = list(data[key])
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EscalationDecision:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        decision = require(data, "decision", kind, str)
        if decision not in (AUTO, ESCALATE):
            raise RecordError(f"An escalation decision must be '{AUTO}' or '{ESCALATE}', "
                              f"not {decision!r}.")
        number = (int, float)
        return cls(
            decision=decision, reasons=strings(data, "reasons", kind),
            reason_codes=strings(data, "reason_codes", kind),
            label=require(data, "label", kind, str),
            confidence=float(require(data, "confidence", kind, number)),
            threshold=_float_or_none(require(data, "threshold", kind, number, optional=True)),
            alpha=_float_or_none(require(data, "alpha", kind, number, optional=True)),
            delta=_float_or_none(require(data, "delta", kind, number, optional=True)),
            prediction_set=strings(data, "prediction_set", kind),
            set_score=require(data, "set_score", kind, str),
            ood_score=_nan_if_none(require(data, "ood_score", kind, number, optional=True)),
            ood_threshold=_nan_if_none(require(data, "ood_threshold", kind, number,
                                               optional=True)),
            n_calibration=require(data, "n_calibration", kind, int),
            calibrated_on=require(data, "calibrated_on", kind, str),
            policy_id=require(data, "policy_id", kind, str),
            guarantee=require(data, "guarantee", kind, str))


def _float_or_none(value: float | int | None) -> float | None:
    return None if value is None else float(value)


def _nan_if_none(value: float | int | None) -> float:
    # JSON has no NaN: a stored "no distance check" can come back as null.
    return float("nan") if value is None else float(value)


@dataclass(frozen=True)
class ModelCard:
    """A model's card (``model_card.json``): what it is for, its data, metrics and limits.

    The nested evidence (metrics per split, the baseline, the escalation evaluation) stays as
    the JSON the training wrote; the fields every reader needs are typed. ``integrity`` says
    whether the card file still matches the model's manifest, ``problem`` why a card could not
    be read (then the rest is empty). Read it with ``models.model_card.read_model_card``.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "model card"

    model_id: str
    created: str = ""
    labels: tuple[str, ...] = ()
    intended_use: str = ""
    base_model: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    comparison: str = ""
    escalation: dict[str, Any] | None = None
    hashes: dict[str, str] = field(default_factory=dict)
    limitations: tuple[str, ...] = ()
    integrity: str | None = None
    problem: str | None = None

    @property
    def test_metrics(self) -> dict[str, Any]:
        return self.metrics.get("test") or {}

    @property
    def baseline_test(self) -> dict[str, Any]:
        return self.baseline.get("test") or {}

    @property
    def temperature(self) -> float | None:
        return self.training.get("temperature")

    @property
    def weights_sha256(self) -> str | None:
        return self.hashes.get("model.safetensors")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        data["limitations"] = list(self.limitations)
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        kept = known_fields(cls, data)
        for key in ("base_model", "training_data", "training", "metrics", "baseline",
                    "hashes"):
            kept[key] = require(data, key, kind, dict, optional=True) or {}
        kept["escalation"] = require(data, "escalation", kind, dict, optional=True)
        kept["labels"] = strings(data, "labels", kind, optional=True) or ()
        kept["limitations"] = strings(data, "limitations", kind, optional=True) or ()
        for key in ("created", "intended_use", "comparison"):
            kept[key] = require(data, key, kind, str, optional=True) or ""
        kept["model_id"] = require(data, "model_id", kind, str)
        return cls(**kept)

    @classmethod
    def unreadable(cls, model_id: str, problem: str) -> ModelCard:
        return cls(model_id=model_id, problem=problem)
