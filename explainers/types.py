"""The explanation layer's seam types: word attributions with their checks, and the LLM's
second opinion. Frozen dataclasses with ``to_dict``/``from_dict`` and a schema version, in a
module that imports nothing heavy (no shap, torch or numpy at import), so the store, the PDF
and the views read them cheaply (DESIGN.md, "Seams")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from models.types import (
    SCHEMA_KEY,
    RecordError,
    check_schema,
    label_values,
    require,
    strings,
)

OUTPUT = "calibrated probability"
# Shapley efficiency holds exactly in exact arithmetic; this bounds float32 rounding.
EFFICIENCY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Feature:
    """One word of the case, where it is in the text, and its attribution for every class."""

    text: str
    start: int
    end: int
    values: dict[str, float]
    # The estimator's standard error of each value (None: not estimated, e.g. the partition
    # explainer, whose answer has no sampling error; 0 for exact values).
    errors: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"text": self.text, "start": self.start, "end": self.end,
                "values": dict(self.values)}
        if self.errors is not None:
            data["errors"] = dict(self.errors)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Feature:
        kind = "attribution's feature"
        if not isinstance(data, Mapping):
            raise RecordError(f"An {kind} must be a mapping, not a {type(data).__name__}.")
        return cls(require(data, "text", kind, str), require(data, "start", kind, int),
                   require(data, "end", kind, int), label_values(data, "values", kind),
                   label_values(data, "errors", kind) if data.get("errors") is not None
                   else None)


# A shown top word is settled when it is among the top words in this share of the replicates.
SETTLED_SHARE = 0.9


@dataclass(frozen=True)
class Uncertainty:
    """Is the order of the top words settled? From the estimator's own uncertainty: bootstrap
    replicates over its samples, or normal draws with its standard errors."""

    settled: bool
    top: tuple[str, ...]  # the shown top words (largest |value| for the explained class)
    inclusion: tuple[float, ...]  # share of replicates with each among their top words
    runner_up: str | None  # the word outside them most often inside
    runner_up_inclusion: float
    replicates: int
    kind: str  # "bootstrap" (KernelSHAP rounds), "heads" (amortized), "exact"
    rounds: int = 1
    stopped: str = "budget"  # "settled", "budget" (the call cap), "exact", "learned"
    share: float = SETTLED_SHARE  # the rule it was judged by (records before it: 0.9)

    def sentence(self) -> str:
        if self.kind == "exact":
            return "Top words: exact values (every subset of the words evaluated)."
        listed = ", ".join(f"“{w}” {share:.0%}"
                           for w, share in zip(self.top, self.inclusion, strict=True))
        draws = (f"{self.replicates} draws within the spread of the explainer's bagged heads"
                 if self.kind == "heads" else f"{self.replicates} resamples of the samples")
        if self.settled:
            return (f"Top words settled: each is among the top {len(self.top)} in at least "
                    f"{min(self.inclusion):.0%} of {draws} ({listed}).")
        unsure = [w for w, share in zip(self.top, self.inclusion, strict=True)
                  if share < self.share]
        rival = (f"; “{self.runner_up}” is among them in {self.runner_up_inclusion:.0%}"
                 if self.runner_up else "")
        return (f"Order of the top words not settled: {', '.join(f'“{w}”' for w in unsure)} "
                f"may not belong among the top {len(self.top)} (share of {draws}: "
                f"{listed}{rival}).")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"], data["inclusion"] = list(self.top), list(self.inclusion)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Uncertainty:
        kind = "attribution's uncertainty"
        if not isinstance(data, Mapping):
            raise RecordError(f"An {kind} must be a mapping, not a {type(data).__name__}.")
        shares = require(data, "inclusion", kind, (list, tuple))
        return cls(bool(require(data, "settled", kind, bool)), strings(data, "top", kind),
                   tuple(float(x) for x in shares),
                   require(data, "runner_up", kind, str, optional=True),
                   float(require(data, "runner_up_inclusion", kind, (int, float))),
                   require(data, "replicates", kind, int), require(data, "kind", kind, str),
                   require(data, "rounds", kind, int, optional=True) or 1,
                   require(data, "stopped", kind, str, optional=True) or "budget",
                   float(require(data, "share", kind, (int, float), optional=True)
                         or SETTLED_SHARE))


@dataclass(frozen=True)
class Faithfulness:
    """AOPC comprehensiveness (higher is better) and sufficiency (lower is better)."""

    comprehensiveness: float
    sufficiency: float
    model_calls: int
    reading: str

    @classmethod
    def from_dict(cls, data: Any) -> Faithfulness:
        kind = "faithfulness reading"
        if not isinstance(data, Mapping):
            raise RecordError(f"A {kind} must be a mapping, not a {type(data).__name__}.")
        return cls(require(data, "comprehensiveness", kind, float),
                   require(data, "sufficiency", kind, float),
                   require(data, "model_calls", kind, int, optional=True) or 0,
                   require(data, "reading", kind, str, optional=True) or "")


@dataclass(frozen=True)
class Flip:
    """The fewest top-attributed words whose removal changes the label, if found."""

    words: tuple[str, ...] | None
    spans: tuple[tuple[int, int], ...]
    new_label: str | None
    searched: int
    model_calls: int

    def to_dict(self) -> dict[str, Any]:
        return {"words": list(self.words) if self.words else None,
                "spans": [list(s) for s in self.spans], "new_label": self.new_label,
                "searched": self.searched, "model_calls": self.model_calls}

    @classmethod
    def from_dict(cls, data: Any) -> Flip:
        kind = "flip search"
        if not isinstance(data, Mapping):
            raise RecordError(f"A {kind} must be a mapping, not a {type(data).__name__}.")
        spans = require(data, "spans", kind, (list, tuple), optional=True) or ()
        return cls(words=strings(data, "words", kind, optional=True) or None,
                   spans=tuple((int(s[0]), int(s[1])) for s in spans),
                   new_label=require(data, "new_label", kind, str, optional=True),
                   searched=require(data, "searched", kind, int, optional=True) or 0,
                   model_calls=require(data, "model_calls", kind, int, optional=True) or 0)


@dataclass(frozen=True)
class FirstAnswer:
    """The amortized explainer's instant answer, as shown before the sampled one replaced it:
    its rank agreement with the final values (explained class) and its seconds."""

    estimator: str
    spearman: float
    top_overlap: float  # share of the final top words (|value|) it also had on top
    seconds: float

    @classmethod
    def from_dict(cls, data: Any) -> FirstAnswer:
        kind = "attribution's first answer"
        if not isinstance(data, Mapping):
            raise RecordError(f"A {kind} must be a mapping, not a {type(data).__name__}.")
        number = lambda key: float(require(data, key, kind, (int, float)))  # noqa: E731
        return cls(require(data, "estimator", kind, str), number("spearman"),
                   number("top_overlap"), number("seconds"))


@dataclass(frozen=True)
class Attribution:
    """Word attributions for every class, explained class first.

    ``probabilities`` are those of the model that was explained: with ``precision="int8"`` that
    is the classifier's quantised copy, whose probabilities differ slightly from the
    full-precision prediction, and for which base value + sum of values = probability holds.
    """

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "attribution"

    label: str
    explained_class: str
    classes: tuple[str, ...]
    probabilities: dict[str, float]
    base_values: dict[str, float]
    features: tuple[Feature, ...]
    method: str
    context: str
    masking: str
    precision: str
    budget: int
    model_calls: int
    seconds: float
    seen_chars: int
    text_chars: int
    final: bool = True
    output: str = OUTPUT
    faithfulness: Faithfulness | None = None
    flip: Flip | None = None
    # What estimated the values, in words ("" in records from before estimators were named),
    # the words in the texts the model evaluated (a cost that does not depend on the machine),
    # and whether the order of the top words is settled (None: not assessed).
    estimator: str = ""
    words_evaluated: int = 0
    uncertainty: Uncertainty | None = None
    # The instant learned answer shown before this one, and how far the two agree.
    first_answer: FirstAnswer | None = None

    @property
    def truncated(self) -> bool:
        return self.seen_chars < self.text_chars

    def values_for(self, cls: str):
        """The values of class ``cls``, one per word, as a numpy array."""
        import numpy as np

        return np.array([f.values[cls] for f in self.features])

    def efficiency_gap(self) -> float:
        """max over classes of |base + sum of values - probability|: 0 up to rounding."""
        return max(abs(self.base_values[c] + sum(f.values[c] for f in self.features)
                       - self.probabilities[c]) for c in self.classes)

    def top_features(self, cls: str | None = None, k: int = 10) -> list[Feature]:
        """The ``k`` words with the largest absolute value for ``cls`` (the explained class)."""
        cls = cls or self.explained_class
        return sorted(self.features, key=lambda f: -abs(f.values[cls]))[:k]

    def to_dict(self) -> dict[str, Any]:
        return {
            SCHEMA_KEY: self.SCHEMA_VERSION,
            "label": self.label,
            "explained_class": self.explained_class,
            "classes": list(self.classes),
            "output": self.output,
            "probabilities": dict(self.probabilities),
            "base_values": dict(self.base_values),
            "features": [f.to_dict() for f in self.features],
            "method": self.method,
            "context": self.context,
            "masking": self.masking,
            "precision": self.precision,
            "budget": self.budget,
            "model_calls": self.model_calls,
            "seconds": round(self.seconds, 4),
            "seen_chars": self.seen_chars,
            "text_chars": self.text_chars,
            "final": self.final,
            "efficiency_gap": float(self.efficiency_gap()),
            "efficiency_tolerance": EFFICIENCY_TOLERANCE,
            "faithfulness": None if self.faithfulness is None else asdict(self.faithfulness),
            "flip": None if self.flip is None else self.flip.to_dict(),
            "estimator": self.estimator,
            "words_evaluated": self.words_evaluated,
            "uncertainty": None if self.uncertainty is None else self.uncertainty.to_dict(),
            "first_answer": None if self.first_answer is None else asdict(self.first_answer),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attribution:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        features = require(data, "features", kind, (list, tuple))
        faithful = require(data, "faithfulness", kind, dict, optional=True)
        flip = require(data, "flip", kind, dict, optional=True)
        uncertainty = require(data, "uncertainty", kind, dict, optional=True)
        first = require(data, "first_answer", kind, dict, optional=True)
        return cls(
            label=require(data, "label", kind, str),
            explained_class=require(data, "explained_class", kind, str),
            classes=strings(data, "classes", kind),
            probabilities=label_values(data, "probabilities", kind),
            base_values=label_values(data, "base_values", kind),
            features=tuple(Feature.from_dict(f) for f in features),
            method=require(data, "method", kind, str),
            context=require(data, "context", kind, str),
            masking=require(data, "masking", kind, str),
            precision=require(data, "precision", kind, str),
            budget=require(data, "budget", kind, int),
            model_calls=require(data, "model_calls", kind, int),
            seconds=require(data, "seconds", kind, float),
            seen_chars=require(data, "seen_chars", kind, int),
            text_chars=require(data, "text_chars", kind, int),
            final=require(data, "final", kind, bool, optional=True) is not False,
            output=require(data, "output", kind, str, optional=True) or OUTPUT,
            faithfulness=None if faithful is None else Faithfulness.from_dict(faithful),
            flip=None if flip is None else Flip.from_dict(flip),
            estimator=require(data, "estimator", kind, str, optional=True) or "",
            words_evaluated=require(data, "words_evaluated", kind, int, optional=True) or 0,
            uncertainty=None if uncertainty is None else Uncertainty.from_dict(uncertainty),
            first_answer=None if first is None else FirstAnswer.from_dict(first))


@dataclass(frozen=True)
class Finding:
    """One thing the check found in an LLM's answer."""

    kind: str  # "disagrees", "not_in_text", "opposite_sign", "unknown_label", "unparsed", ...
    severity: str  # "warning" (show prominently) or "note"
    message: str


@dataclass(frozen=True)
class RationaleCheck:
    """Do the words the LLM cites drive the small model's answer? They were taken out of the
    case and the small model scored it again: the probability of the label the LLM argues for
    should fall by at least ``threshold`` if they carry it."""

    label: str  # the label the LLM argues for
    removed: tuple[str, ...]  # the cited words found in the case (every occurrence removed)
    before: float  # the small model's probability of ``label`` with them
    after: float  # and without them
    threshold: float
    among_top: int  # cited words among the small model's ``top_k`` most attributed words
    top_k: int

    @property
    def drop(self) -> float:
        return self.before - self.after

    @property
    def holds(self) -> bool:
        return self.drop >= self.threshold

    def sentence(self) -> str:
        words = ", ".join(f"“{w}”" for w in self.removed)
        moved = (f"Without the words the AI cites ({words}) the small model's probability of "
                 f"“{self.label}” goes from {self.before:.2f} to {self.after:.2f}")
        top = (f"; {self.among_top} of them among its {self.top_k} most attributed words"
               if self.top_k else "")
        if self.holds:
            return f"{moved}: they drive its answer{top}."
        return (f"{moved}, less than the {self.threshold:.2f} it would fall if they carried "
                f"that label: the cited words do not drive the small model's answer{top}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RationaleCheck:
        kind = "LLM opinion's rationale check"
        if not isinstance(data, Mapping):
            raise RecordError(f"An {kind} must be a mapping, not a {type(data).__name__}.")
        number = lambda key: float(require(data, key, kind, (int, float)))  # noqa: E731
        return cls(require(data, "label", kind, str),
                   strings(data, "removed", kind, optional=True) or (), number("before"),
                   number("after"), number("threshold"), int(require(data, "among_top", kind,
                                                                     int)),
                   int(require(data, "top_k", kind, int)))


@dataclass(frozen=True)
class LLMOpinion:
    """An AI-generated second opinion, with the evidence check and what left the machine."""

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "LLM opinion"

    backend: str
    model: str
    base_url: str | None
    text: str
    raw_text: str
    label: str | None
    cited_words: tuple[str, ...]
    check: tuple[Finding, ...]
    parse: str
    sent_text: str
    sent_sha256: str
    redactions: tuple[dict, ...]
    case_trimmed: bool
    prompt_version: str
    prompt_sha256: str
    tokens_in: int | None
    tokens_out: int | None
    first_token_seconds: float | None
    seconds: float
    error: str | None
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    ai_generated: bool = True
    rationale: RationaleCheck | None = None  # None: not checked (an opinion from before)
    # The LLM's label as a distribution over the label set, and where it came from
    # (models.llm.label_distribution); None when the backend could not give one.
    label_probabilities: dict[str, float] | None = None
    label_probabilities_source: str = ""

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.check if f.severity == "warning")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cited_words"] = list(self.cited_words)
        data["check"] = [asdict(f) for f in self.check]
        data["redactions"] = [dict(r) for r in self.redactions]
        if self.rationale is not None:
            data["rationale"]["removed"] = list(self.rationale.removed)
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LLMOpinion:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        check = require(data, "check", kind, (list, tuple), optional=True) or ()
        redactions = require(data, "redactions", kind, (list, tuple), optional=True) or ()
        text = lambda key: require(data, key, kind, str, optional=True) or ""  # noqa: E731
        number = lambda key, t: require(data, key, kind, t, optional=True)  # noqa: E731
        return cls(
            backend=require(data, "backend", kind, str), model=require(data, "model", kind, str),
            base_url=require(data, "base_url", kind, str, optional=True),
            text=text("text"), raw_text=text("raw_text"),
            label=require(data, "label", kind, str, optional=True),
            cited_words=strings(data, "cited_words", kind, optional=True) or (),
            check=tuple(_finding(f) for f in check), parse=text("parse") or "none",
            sent_text=text("sent_text"), sent_sha256=text("sent_sha256"),
            redactions=tuple(dict(r) for r in redactions),
            case_trimmed=bool(data.get("case_trimmed", False)),
            prompt_version=text("prompt_version"), prompt_sha256=text("prompt_sha256"),
            tokens_in=number("tokens_in", int), tokens_out=number("tokens_out", int),
            first_token_seconds=number("first_token_seconds", float),
            seconds=number("seconds", float) or 0.0,
            error=require(data, "error", kind, str, optional=True),
            created=text("created"), ai_generated=data.get("ai_generated", True) is not False,
            rationale=(RationaleCheck.from_dict(data["rationale"])
                       if data.get("rationale") is not None else None),
            label_probabilities=(label_values(data, "label_probabilities", kind)
                                 if data.get("label_probabilities") is not None else None),
            label_probabilities_source=text("label_probabilities_source"))


def _finding(data: Any) -> Finding:
    kind = "LLM opinion's finding"
    if not isinstance(data, Mapping):
        raise RecordError(f"An {kind} must be a mapping, not a {type(data).__name__}.")
    return Finding(require(data, "kind", kind, str), require(data, "severity", kind, str),
                   require(data, "message", kind, str))
