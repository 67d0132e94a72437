"""What the store hands out: plain frozen dataclasses, never ORM objects or sessions.

Times are UTC ISO 8601 strings. A stored record keeps ``data``, the domain object's
``to_dict()`` exactly as stored (what its hash covers), and gives the domain object itself as
``value`` (``Prediction``, ``EscalationDecision``, ``Attribution``, ``LLMOpinion``): views and
reports read the object, never the dict by string keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from typing import Any, ClassVar

from explainers.types import Attribution, LLMOpinion
from models.types import (
    SCHEMA_KEY,
    EscalationDecision,
    Prediction,
    check_schema,
    require,
)

JUDGED = "judged"  # the audit event of a blind first judgement

# The domain type of each kind of record (StoredRecord.kind).
RECORD_TYPES: dict[str, type] = {
    "prediction": Prediction, "attribution": Attribution,
    "escalation": EscalationDecision, "opinion": LLMOpinion,
}


@dataclass(frozen=True)
class AddedCase:
    id: int
    new: bool  # False: a case with the same text was already stored (a re-run skips it)


@dataclass(frozen=True)
class StoredRecord:
    """A prediction, attribution, escalation decision or LLM opinion as stored."""

    id: int
    kind: str  # "prediction" | "attribution" | "escalation" | "opinion"
    case_id: int
    created: str
    sha256: str  # of the stored row; cited by its audit event and by the reviews that saw it
    data: dict[str, Any]

    @cached_property
    def value(self) -> Any:
        """The record as its domain object (``RECORD_TYPES[kind]``)."""
        return RECORD_TYPES[self.kind].from_dict(self.data)


@dataclass(frozen=True)
class ReviewSignature:
    """Who signed a review, with what key, over which chain head, and whether it verifies
    (checked when the review is read: ``problem`` None means verified)."""

    user_id: int
    login: str
    full_name: str  # the printed name (21 CFR 11.50)
    role: str
    key_fingerprint: str
    head_id: int
    head_hash: str
    problem: str | None = None

    @property
    def verified(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Account:
    """A user as the store hands it out: never the password hash or the sealed key."""

    id: int
    login: str
    full_name: str
    role: str  # "reviewer" | "approver" | "admin"
    disabled: bool
    failed_attempts: int
    locked: bool  # too many failed attempts; an admin's reset unlocks
    created: str
    key_id: int  # the current signing key
    key_fingerprint: str


@dataclass(frozen=True)
class Review:
    """A signed review of one case version. Reviews are never edited; a later one supersedes."""

    SCHEMA_VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "review"

    id: int
    case_id: int
    reviewer: str
    decision: str  # "accept" | "override" | "defer"
    label: str | None  # the label the reviewer signed for (the model's, on accept)
    reason: str | None
    meaning: str  # what the signature means: "reviewed" | "approved"
    signed_at: str
    case_sha256: str  # the case version the reviewer saw (CaseRecord.version_sha256)
    prediction_id: int | None
    supersedes_id: int | None  # the review this one replaces as the latest; both are kept
    # The electronic signature; None when unsigned (or not loaded: case lists leave it out).
    # Not compared: a review read with its signature checked is the same review as its row
    # in a case list.
    signature: ReviewSignature | None = field(default=None, compare=False)
    recorded_before_accounts: bool = field(default=False, compare=False)

    @property
    def signed_label(self) -> str | None:
        """The label this review decided, or None for a deferral."""
        return None if self.decision == "defer" else self.label

    def to_dict(self) -> dict[str, Any]:
        return {SCHEMA_KEY: self.SCHEMA_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Review:
        kind = cls.KIND
        data = check_schema(data, kind, cls.SCHEMA_VERSION)
        optional = {"label", "reason", "prediction_id", "supersedes_id"}
        types = {"id": int, "case_id": int, "prediction_id": int, "supersedes_id": int}
        plain = {"signature", "recorded_before_accounts"}
        values = {name: require(data, name, kind, types.get(name, str),
                                optional=name in optional)
                  for name in (f.name for f in fields(cls)) if name not in plain}
        signature = data.get("signature")
        return cls(**values, recorded_before_accounts=bool(data.get("recorded_before_accounts")),
                   signature=ReviewSignature(**signature) if signature else None)


ReviewRecord = Review  # the name the store used before reviews were a seam type


@dataclass(frozen=True)
class AuditEvent:
    id: int
    time: str
    kind: str
    case_id: int | None
    actor: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Judgement:
    """A blind first judgement: the reviewer's own label, made before anything of the model's
    answer was shown (``label`` None: they could not tell). It is not a signature; the signed
    review that follows covers it, since a signature cites the chain head that holds it."""

    event_id: int
    case_id: int
    time: str
    judge: str  # the login of who judged, as the audit event's actor
    label: str | None
    note: str

    @classmethod
    def from_event(cls, event: AuditEvent) -> Judgement:
        return cls(event.id, event.case_id or 0, event.time, event.actor,
                   event.payload.get("label"), event.payload.get("note") or "")


@dataclass(frozen=True)
class CaseRecord:
    """Everything stored for one case, each history oldest first."""

    id: int
    created: str
    text: str
    content_sha256: str
    source: str
    metadata: dict[str, Any]
    predictions: tuple[StoredRecord, ...]
    attributions: tuple[StoredRecord, ...]
    escalations: tuple[StoredRecord, ...]
    opinions: tuple[StoredRecord, ...]
    reviews: tuple[ReviewRecord, ...]
    events: tuple[AuditEvent, ...]
    version_sha256: str  # what a reviewer signs: the text and the latest of each record

    @property
    def prediction(self) -> StoredRecord | None:
        return self.predictions[-1] if self.predictions else None

    @property
    def audit_sample(self) -> bool:
        """An AUTO decision drawn for the audit sample: a person reviews it blind."""
        return any(event.kind == "audit_sampled" for event in self.events)

    @property
    def attribution(self) -> StoredRecord | None:
        return self.attributions[-1] if self.attributions else None

    @property
    def escalation(self) -> StoredRecord | None:
        return self.escalations[-1] if self.escalations else None

    @property
    def opinion(self) -> StoredRecord | None:
        return self.opinions[-1] if self.opinions else None

    @property
    def review(self) -> ReviewRecord | None:
        return self.reviews[-1] if self.reviews else None

    @property
    def judgements(self) -> tuple[Judgement, ...]:
        return tuple(Judgement.from_event(e) for e in self.events if e.kind == JUDGED)


@dataclass(frozen=True)
class CaseSummary:
    """One row of the case list: the latest prediction, escalation and review."""

    id: int
    created: str
    source: str
    preview: str  # the start of the text
    label: str | None  # the model's latest label
    confidence: float | None
    model_id: str | None
    escalation: str | None  # "auto" | "escalate" | None (not decided yet)
    review: ReviewRecord | None
    audit_sample: bool = False  # an AUTO case drawn for the audit sample (reviewed blind)


@dataclass(frozen=True)
class ReviewedCase:
    """A case whose latest review is signed and decides a label: a labelled example from a
    reviewer (the model's label when accepted, the reviewer's when overridden)."""

    case_id: int
    text: str
    label: str
    decision: str  # "accept" | "override"
    meaning: str  # "reviewed" | "approved"
    review_id: int
    case_sha256: str  # the case version the reviewer signed


@dataclass(frozen=True)
class AuditedDecision:
    """An automatic (AUTO) decision a reviewer has since signed a label for: the measurement
    of whether the certified bound holds (``models.guarantee_monitor``)."""

    case_id: int
    escalation_id: int
    auto_label: str
    review_id: int
    reviewed_label: str
    judged_label: str | None = None  # the blind first judgement, made before the answer showed
    signed_at: str = ""  # when the review was signed (UTC, ISO 8601)

    @property
    def wrong(self) -> bool:
        """Judged by the blind first judgement when there is one (the signed review came after
        the model's answer was shown, and may lean on it), else by the signed review."""
        return self.auto_label != (self.judged_label or self.reviewed_label)


@dataclass(frozen=True)
class CaseProgress:
    """How far a stored case got: what a resumed batch still has to do for it."""

    case_id: int
    model_id: str | None  # of the latest prediction; None: never predicted
    explained: bool  # the latest prediction has an attribution
    asked: bool  # an LLM opinion that answered (not an error) is stored
    escalated: bool | None  # the latest escalation decision; None: never decided


@dataclass(frozen=True)
class CaseWrite:
    """What one write stored: the case, the ids of its new records by kind, the version a
    reviewer now signs, and the case's row for lists, so nobody reads back what was written."""

    case_id: int
    new: bool  # the case itself was created by this write
    record_ids: dict[str, int] = field(default_factory=dict)  # e.g. {"prediction": 7}
    version_sha256: str = ""
    summary: CaseSummary | None = None
    review: Review | None = None  # the review a signing wrote

    @property
    def id(self) -> int:  # reads like AddedCase
        return self.case_id


@dataclass(frozen=True)
class CasePage:
    items: tuple[CaseSummary, ...]
    total: int  # matching cases across all pages
    page: int
    page_size: int


@dataclass(frozen=True)
class ChainVerification:
    """The result of walking the audit chain. Unpacks as ``ok, events, first_broken_id``.

    ``ok`` holds only when the chain, the records it cites, every signature and checkpoint,
    the accounts and the append-only guards all hold. Events after the last signed checkpoint
    are reported (``unanchored_events``) but do not fail it: they are the bounded tail a
    rewrite could still reach unseen.
    """

    ok: bool
    events: int  # events checked
    first_broken_id: int | None  # the first event that does not hold, or None
    reason: str | None = None
    signatures: int = 0  # signatures checked
    bad_signatures: tuple[tuple[int, str], ...] = ()  # (review id, why), every one
    unsigned_before_accounts: int = 0  # reviews from when a signature was a typed name
    anchored_to: int | None = None  # the event id the last valid checkpoint signs
    unanchored_events: int = 0  # events after it
    problems: tuple[str, ...] = ()  # checkpoints, accounts, guards: every one found
    against: str | None = None  # ``--against``: what was found of the head given

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ok, self.events, self.first_broken_id))
