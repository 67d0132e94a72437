"""What the store hands out: plain frozen dataclasses, never ORM objects or sessions.

Times are UTC ISO 8601 strings; ``data`` is the domain object's ``to_dict()`` exactly as
stored (JSON types: tuples came back as lists).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


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


@dataclass(frozen=True)
class ReviewRecord:
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


@dataclass(frozen=True)
class CasePage:
    items: tuple[CaseSummary, ...]
    total: int  # matching cases across all pages
    page: int
    page_size: int


@dataclass(frozen=True)
class ChainVerification:
    """The result of walking the audit chain. Unpacks as ``ok, events, first_broken_id``."""

    ok: bool
    events: int  # events checked
    first_broken_id: int | None  # the first event that does not hold, or None
    reason: str | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ok, self.events, self.first_broken_id))
