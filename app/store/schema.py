"""The tables, as SQLAlchemy 2.0 typed ORM classes. Internal: nothing here leaves the store.

This module describes the schema at the head revision; the migrations in
``app/store/migrations/versions/`` create it (a test checks the two agree). Every table but
``models``, ``case_latest`` (the case list's derived copy of the latest records),
``user_state`` and ``key_secrets`` (a user's changing role, password hash and sealed key) is
append-only: SQLite triggers created by the migrations refuse UPDATE and DELETE, so a review
or a prediction, once written, is evidence. Domain objects are kept whole as canonical JSON
(``data``) beside the few key columns the case list filters and sorts on.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.store.canonical import canonical_json

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
REVIEW_DECISIONS = ("accept", "override", "defer")
SIGNATURE_MEANINGS = ("reviewed", "approved")
ESCALATION_DECISIONS = ("auto", "escalate")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps them as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONText(TypeDecorator[Any]):
    """Canonical JSON in a TEXT column: the same bytes on every backend, so hashes repeat
    (PostgreSQL's JSON types would reorder keys and refuse ``Infinity``)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar = {datetime: UTCDateTime, dict[str, Any]: JSONText}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class ModelRow(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    card: Mapped[dict[str, Any]]
    created: Mapped[datetime]


class ReviewerRow(Base):
    __tablename__ = "reviewers"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[datetime]


class CaseRow(Base):
    __tablename__ = "cases"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    created: Mapped[datetime] = mapped_column(index=True)
    text: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(200))
    # "metadata" is reserved on declarative classes; the column keeps the plain name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata")


class PredictionRow(Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_case_id_id", "case_id", "id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    created: Mapped[datetime]
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any]]


class AttributionRow(Base):
    __tablename__ = "attributions"
    __table_args__ = (Index("ix_attributions_case_id_id", "case_id", "id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id"))
    created: Mapped[datetime]
    label: Mapped[str | None] = mapped_column(String(200))
    method: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any]]


class EscalationRow(Base):
    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_case_id_id", "case_id", "id"),
                      CheckConstraint(_in("decision", ESCALATION_DECISIONS), name="decision"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id"))
    created: Mapped[datetime]
    decision: Mapped[str] = mapped_column(String(16))
    policy_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]]


class OpinionRow(Base):
    __tablename__ = "llm_opinions"
    __table_args__ = (Index("ix_llm_opinions_case_id_id", "case_id", "id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    created: Mapped[datetime]
    backend: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(300))
    label: Mapped[str | None] = mapped_column(String(200))
    sent_sha256: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]


class ReviewRow(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_case_id_id", "case_id", "id"),
        CheckConstraint(_in("decision", REVIEW_DECISIONS), name="decision"),
        CheckConstraint(_in("meaning", SIGNATURE_MEANINGS), name="meaning"),
        # The rule lives in the database too, so no other writer can store a bare override.
        CheckConstraint("decision <> 'override' OR (label IS NOT NULL AND reason IS NOT NULL "
                        "AND length(trim(reason)) > 0)", name="override_explained"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id"))
    decision: Mapped[str] = mapped_column(String(16))
    label: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    meaning: Mapped[str] = mapped_column(String(16))
    signed_at: Mapped[datetime]
    case_sha256: Mapped[str] = mapped_column(String(64))
    prediction_id: Mapped[int | None] = mapped_column(ForeignKey("predictions.id"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))


class UserRow(Base):
    """Who may sign: identity only, append-only (a name is never edited; the state that
    changes lives in ``user_state``). Cited by its ``user_created`` event."""

    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    created: Mapped[datetime]


class UserStateRow(Base):
    """A user's changing state: role, disabled, failed attempts, the Argon2id password hash.
    Updated, so not evidence by itself: every change is an audit event that carries the role
    and disabled flag, and ``audit verify`` checks this row against the latest of them."""

    __tablename__ = "user_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True,
                                         autoincrement=False)
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool]
    failed_attempts: Mapped[int]
    password_hash: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime]


class SigningKeyRow(Base):
    """A public key: a user's (``user_id``) or an installation's (``user_id`` NULL, ``label``
    names it). Append-only; a rotation adds a row and the old key stays to verify old
    signatures (a user's key is valid from its ``created`` until their next key's)."""

    __tablename__ = "signing_keys"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str] = mapped_column(String(200))
    public_key: Mapped[str] = mapped_column(String(64), unique=True)  # raw Ed25519, hex
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime]


class KeySecretRow(Base):
    """A user's private key, sealed under their password (``app.accounts.keys``); replaced
    when the password changes. Never leaves the store in clear."""

    __tablename__ = "key_secrets"

    key_id: Mapped[int] = mapped_column(ForeignKey("signing_keys.id"), primary_key=True,
                                        autoincrement=False)
    sealed: Mapped[dict[str, Any]]


class SignatureRow(Base):
    """The electronic signature of one review (``app.accounts.statements``). Append-only and
    cited by its ``signed`` event."""

    __tablename__ = "signatures"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key_id: Mapped[int] = mapped_column(ForeignKey("signing_keys.id"))
    role: Mapped[str] = mapped_column(String(16))
    case_sha256: Mapped[str] = mapped_column(String(64))
    head_id: Mapped[int]
    head_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519, hex


class CheckpointRow(Base):
    """A signed chain head: events up to ``event_id`` cannot be rewritten or deleted unseen.
    Outside the chain on purpose (signing a head must not move it)."""

    __tablename__ = "checkpoints"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int]
    event_hash: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int] = mapped_column(ForeignKey("signing_keys.id"))
    signed_at: Mapped[str] = mapped_column(String(40))  # UTC ISO text, signed as stored
    reason: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))


class StoreFactRow(Base):
    """Facts about the history fixed once (append-only): e.g. the last review made before
    accounts existed, so a later review without a signature is named, not excused."""

    __tablename__ = "store_facts"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CaseLatestRow(Base):
    """The case list's row of each case: copies of the key columns of its latest prediction,
    escalation decision and review, so the list filters and sorts through plain indexes.

    Finding each case's latest records at query time costs a scan of every case for any
    filter or sort (about a second at 100,000 cases). This table is derived, not evidence:
    the repository's writes keep it in step in the same transaction, migration 0003 built it
    from the records, and ``verify_chain`` checks that it still agrees with them. So it is
    the one table that is updated, and it is neither hashed nor cited by the audit chain.
    """

    __tablename__ = "case_latest"
    __table_args__ = (
        # Each filter column leads an index ending in created: a filtered page in the default
        # (newest first) order reads 100 index entries, and its count only the index.
        Index("ix_case_latest_created", "created"),
        Index("ix_case_latest_label_created", "label", "created"),
        Index("ix_case_latest_escalation_created", "escalation", "created"),
        Index("ix_case_latest_review_decision_created", "review_decision", "created"),
        Index("ix_case_latest_reviewed_created", "reviewed", "created"),
        Index("ix_case_latest_reviewer_id_created", "reviewer_id", "created"),
        Index("ix_case_latest_model_id_created", "model_id", "created"),
        Index("ix_case_latest_confidence", "confidence"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True,
                                         autoincrement=False)
    created: Mapped[datetime]  # the case's, so one index serves a filter and the date order
    label: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    model_id: Mapped[str | None] = mapped_column(String(200))
    escalation: Mapped[str | None] = mapped_column(String(16))  # auto | escalate
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    review_decision: Mapped[str | None] = mapped_column(String(16))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("reviewers.id"))
    reviewed: Mapped[bool]  # the latest review accepts or overrides (a defer is not done)


class ReviewClaimRow(Base):
    """Who is reviewing a case right now, until when: the review queue of a team hands a
    case to one reviewer at a time. Coordination, not evidence — a claim is overwritten when
    it expires and deleted when its review is signed, so it is neither hashed nor cited by
    the audit chain (the review itself is). Times are the writers' clocks (UTC)."""

    __tablename__ = "review_claims"
    __table_args__ = (Index("ix_review_claims_expires", "expires"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), primary_key=True,
                                         autoincrement=False)
    claimed_by: Mapped[str] = mapped_column(String(200))
    expires: Mapped[datetime]


class AuditEventRow(Base):
    """One link of the hash chain. ``id`` is assigned by the store (last + 1), not by SQLite,
    because it is part of the hashed fields and must be known before the insert."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_case_id", "case_id"),
                      Index("ix_audit_events_kind", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    time: Mapped[str] = mapped_column(String(40))  # UTC ISO text: hashed exactly as stored
    kind: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    actor: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str] = mapped_column(Text)  # canonical JSON text
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)  # one successor per link
    hash: Mapped[str] = mapped_column(String(64), unique=True)


RECORD_TABLES: dict[str, type[Base]] = {
    "cases": CaseRow, "predictions": PredictionRow, "attributions": AttributionRow,
    "escalations": EscalationRow, "llm_opinions": OpinionRow, "reviews": ReviewRow,
}
# Tables whose rows may never change or go (SQLite triggers refuse UPDATE and DELETE);
# ``audit verify`` reports any whose guards are gone.
APPEND_ONLY_TABLES = ("reviewers", "cases", "predictions", "attributions", "escalations",
                      "llm_opinions", "reviews", "audit_events", "users", "signing_keys",
                      "signatures", "checkpoints", "store_facts")
# The audit event that marks an AUTO case drawn for the audit sample (its case_id column).
AUDIT_SAMPLED = "audit_sampled"
ACCOUNTS_FROM_REVIEW = "accounts_from_review_id"  # store_facts: reviews after it are signed
