"""Loading rows and turning them into the plain records the store hands out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.store import audit
from app.store.canonical import hash_of, iso, sha256_hex
from app.store.errors import CaseNotFound
from app.store.records import (
    JUDGED,
    AuditedDecision,
    CaseProgress,
    CaseRecord,
    Review,
    ReviewedCase,
    ReviewSignature,
    StoredRecord,
)
from app.store.schema import (
    ACCOUNTS_FROM_REVIEW,
    AUDIT_SAMPLED,
    AttributionRow,
    AuditEventRow,
    Base,
    CaseLatestRow,
    CaseRow,
    EscalationRow,
    OpinionRow,
    PredictionRow,
    ReviewerRow,
    ReviewRow,
    SignatureRow,
    SigningKeyRow,
    StoreFactRow,
    UserRow,
)
from app.store.signature_check import KeyBook, check_signature

LOOKUP_CHUNK = 500  # content hashes per IN (...)

# The records a case version is made of, by the name StoredRecord.kind uses.
RECORD_KINDS: dict[str, type[Base]] = {
    "prediction": PredictionRow, "attribution": AttributionRow,
    "escalation": EscalationRow, "opinion": OpinionRow,
}


def require_case(session: Session, case_id: int) -> CaseRow:
    case = session.get(CaseRow, case_id)
    if case is None:
        raise CaseNotFound(f"There is no case {case_id} in the case history.")
    return case


def require_cases(session: Session, case_ids: set[int]) -> None:
    """``require_case`` for many ids in one query."""
    found = set(session.scalars(select(CaseRow.id).where(CaseRow.id.in_(sorted(case_ids)))))
    missing = sorted(case_ids - found)
    if missing:
        raise CaseNotFound(f"There is no case {missing[0]} in the case history.")


def case_id_with_text(session: Session, text: str) -> int | None:
    """The id of the stored case with exactly this text (cases are unique by text)."""
    return session.scalar(select(CaseRow.id).where(CaseRow.content_sha256 == sha256_hex(text)))


def progress_of(session: Session, texts: list[str]) -> dict[str, CaseProgress]:
    """``CaseRepository.case_progress``: a few queries per chunk of texts, not per case."""
    by_hash = {sha256_hex(t): t for t in texts}
    found: dict[str, CaseProgress] = {}
    hashes = list(by_hash)
    for start in range(0, len(hashes), LOOKUP_CHUNK):
        chunk = hashes[start:start + LOOKUP_CHUNK]
        rows = session.execute(
            select(CaseRow.content_sha256, CaseRow.id, CaseLatestRow.model_id,
                   CaseLatestRow.escalation)
            .join(CaseLatestRow, CaseLatestRow.case_id == CaseRow.id)
            .where(CaseRow.content_sha256.in_(chunk))).all()
        ids = [row.id for row in rows]
        explained = _explained_cases(session, ids)
        asked = _answered_cases(session, ids)
        for row in rows:
            found[by_hash[row.content_sha256]] = CaseProgress(
                row.id, row.model_id, row.id in explained, row.id in asked,
                None if row.escalation is None else row.escalation != "auto")
    return found


def _answered_cases(session: Session, ids: list[int]) -> set[int]:
    """The cases among ``ids`` with an LLM opinion that is an answer (not an error)."""
    if not ids:
        return set()
    rows = session.execute(select(OpinionRow.case_id, OpinionRow.data)
                           .where(OpinionRow.case_id.in_(ids)))
    return {case_id for case_id, data in rows if not (data or {}).get("error")}


def _explained_cases(session: Session, ids: list[int]) -> set[int]:
    """The cases among ``ids`` whose latest prediction has an attribution."""
    if not ids:
        return set()
    newest = (select(PredictionRow.case_id, func.max(PredictionRow.id).label("pid"))
              .where(PredictionRow.case_id.in_(ids)).group_by(PredictionRow.case_id)
              .subquery())
    return set(session.scalars(
        select(newest.c.case_id).join(AttributionRow,
                                      AttributionRow.prediction_id == newest.c.pid)))


def latest(session: Session, model: Any, case_id: int) -> Any:
    return session.scalars(select(model).where(model.case_id == case_id)
                           .order_by(model.id.desc()).limit(1)).first()


def latest_labels(session: Session, case_id: int) -> list[str]:
    """The label set of the case's latest prediction (empty before one)."""
    row = latest(session, PredictionRow, case_id)
    return [] if row is None else list(stored("prediction", row).value.labels)


def version_sha256(case_id: int, content_sha256: str,
                   latest_records: dict[str, StoredRecord | None]) -> str:
    """The case as a reviewer sees it: its text and the latest record of each kind.

    A new prediction or opinion makes a new version; a review does not (two reviewers can
    sign the same version).
    """
    return hash_of({
        "case": {"id": case_id, "content_sha256": content_sha256},
        **{kind: None if rec is None else {"id": rec.id, "sha256": rec.sha256}
           for kind, rec in sorted(latest_records.items())},
    })


def current_version(session: Session, case: CaseRow) -> str:
    newest = {kind: latest(session, model, case.id) for kind, model in RECORD_KINDS.items()}
    return version_sha256(case.id, case.content_sha256,
                          {k: None if row is None else stored(k, row)
                           for k, row in newest.items()})


def current_versions(session: Session, case_ids: list[int]) -> dict[int, str]:
    """``current_version`` of many cases with one query per record kind, not four per case
    (what a batch write returns for each of its cases)."""
    versions: dict[int, str] = {}
    for start in range(0, len(case_ids), LOOKUP_CHUNK):
        chunk = case_ids[start:start + LOOKUP_CHUNK]
        newest: dict[tuple[int, str], StoredRecord] = {}
        for kind, model in RECORD_KINDS.items():
            ids = (select(func.max(model.id)).where(model.case_id.in_(chunk))
                   .group_by(model.case_id))
            for row in session.scalars(select(model).where(model.id.in_(ids))):
                newest[(row.case_id, kind)] = stored(kind, row)
        for case_id, content in session.execute(
                select(CaseRow.id, CaseRow.content_sha256).where(CaseRow.id.in_(chunk))):
            versions[case_id] = version_sha256(
                case_id, content, {kind: newest.get((case_id, kind)) for kind in RECORD_KINDS})
    return versions


def stored(kind: str, row: Any) -> StoredRecord:
    return StoredRecord(id=row.id, kind=kind, case_id=row.case_id, created=iso(row.created),
                        sha256=audit.row_sha256(row), data=row.data)


def review_record(row: ReviewRow, reviewer: str, signature: ReviewSignature | None = None,
                  before_accounts: bool = False) -> Review:
    return Review(id=row.id, case_id=row.case_id, reviewer=reviewer,
                  decision=row.decision, label=row.label, reason=row.reason,
                  meaning=row.meaning, signed_at=iso(row.signed_at),
                  case_sha256=row.case_sha256, prediction_id=row.prediction_id,
                  supersedes_id=row.supersedes_id, signature=signature,
                  recorded_before_accounts=before_accounts)


def accounts_from_review(session: Session) -> int:
    """Reviews with ids up to this one were made before accounts existed (migration 0004)."""
    value = session.scalar(select(StoreFactRow.value)
                           .where(StoreFactRow.name == ACCOUNTS_FROM_REVIEW))
    return int(value) if value is not None else 0


def chain_hash(session: Session) -> Callable[[int], str | None]:
    def lookup(event_id: int) -> str | None:
        return session.scalar(select(AuditEventRow.hash).where(AuditEventRow.id == event_id))
    return lookup


def reviews_of(session: Session, case_id: int, newest_only: bool = False) -> list[Review]:
    """The case's reviews, each with its signature checked (a few per case: cheap)."""
    query = (select(ReviewRow, ReviewerRow.name, SignatureRow, UserRow).join(ReviewerRow)
             .outerjoin(SignatureRow, SignatureRow.review_id == ReviewRow.id)
             .outerjoin(UserRow, UserRow.id == SignatureRow.user_id)
             .where(ReviewRow.case_id == case_id))
    query = query.order_by(ReviewRow.id.desc()).limit(1) if newest_only else \
        query.order_by(ReviewRow.id)
    rows = session.execute(query).all()
    if not rows:
        return []
    keys = KeyBook(session.scalars(select(SigningKeyRow)))
    before = accounts_from_review(session)
    lookup = chain_hash(session)
    return [review_record(row, name,
                          None if sig is None else check_signature(row, sig, user, keys, lookup),
                          before_accounts=sig is None and row.id <= before)
            for row, name, sig, user in rows]


def load_case(session: Session, case_id: int) -> CaseRecord:
    case = require_case(session, case_id)
    histories = {
        kind: tuple(stored(kind, row) for row in session.scalars(
            select(model).where(model.case_id == case_id).order_by(model.id)))
        for kind, model in RECORD_KINDS.items()
    }
    events = session.scalars(select(AuditEventRow).where(AuditEventRow.case_id == case_id)
                             .order_by(AuditEventRow.id))
    version = version_sha256(case.id, case.content_sha256,
                             {k: h[-1] if h else None for k, h in histories.items()})
    return CaseRecord(
        id=case.id, created=iso(case.created), text=case.text,
        content_sha256=case.content_sha256, source=case.source, metadata=case.meta,
        predictions=histories["prediction"], attributions=histories["attribution"],
        escalations=histories["escalation"], opinions=histories["opinion"],
        reviews=tuple(reviews_of(session, case_id)),
        events=tuple(audit.to_event(e) for e in events), version_sha256=version)


def reviewed_cases(session: Session, approved_only: bool = False) -> list[ReviewedCase]:
    """Every case whose latest review is signed and is not a deferral, oldest case first: the
    labels reviewers stand behind. Unsigned reviews (from before accounts) and cases whose
    latest word is "defer" are left out; an earlier review superseded by a later one counts
    only through the later one."""
    newest = (select(func.max(ReviewRow.id)).group_by(ReviewRow.case_id)).scalar_subquery()
    query = (select(ReviewRow, CaseRow.text)
             .join(CaseRow, CaseRow.id == ReviewRow.case_id)
             .join(SignatureRow, SignatureRow.review_id == ReviewRow.id)
             .where(ReviewRow.id.in_(newest), ReviewRow.decision != "defer")
             .order_by(ReviewRow.case_id))
    if approved_only:
        query = query.where(ReviewRow.meaning == "approved")
    return [ReviewedCase(row.case_id, text, row.label, row.decision, row.meaning, row.id,
                         row.case_sha256)
            for row, text in session.execute(query)]


def audited_decisions(session: Session, policy_id: str) -> list[AuditedDecision]:
    """The AUTO decisions of ``policy_id`` drawn for the audit sample that a signed,
    non-deferred review has since judged (the review cites the prediction the decision was
    made on), in the order they were signed. Only each case's latest review counts; AUTO
    cases reviewed outside the sample are not a random sample, so they are left out."""
    newest = (select(func.max(ReviewRow.id)).group_by(ReviewRow.case_id)).scalar_subquery()
    query = (select(EscalationRow, ReviewRow)
             .join(ReviewRow, (ReviewRow.case_id == EscalationRow.case_id)
                   & (ReviewRow.prediction_id == EscalationRow.prediction_id))
             .join(SignatureRow, SignatureRow.review_id == ReviewRow.id)
             .where(EscalationRow.policy_id == policy_id, EscalationRow.decision == "auto",
                    ReviewRow.id.in_(newest), ReviewRow.decision != "defer")
             .order_by(ReviewRow.id))
    drawn = {case_id for case_id, payload in session.execute(
        select(AuditEventRow.case_id, AuditEventRow.payload)
        .where(AuditEventRow.kind == AUDIT_SAMPLED))
        if json.loads(payload).get("policy_id") == policy_id}  # drawn under this policy
    rows = [(esc, review) for esc, review in session.execute(query) if esc.case_id in drawn]
    judged: dict[int, str] = {}
    events = (select(AuditEventRow.case_id, AuditEventRow.payload)
              .where(AuditEventRow.kind == JUDGED).order_by(AuditEventRow.id))
    for case_id, payload in session.execute(events):
        label = json.loads(payload).get("label")
        if label is not None:
            judged.setdefault(case_id, label)  # the first judgement: made blind
    return [AuditedDecision(esc.case_id, esc.id, esc.data["label"], review.id, review.label,
                            judged.get(esc.case_id), iso(review.signed_at))
            for esc, review in rows]


def weekly_activity(session: Session) -> list[dict[str, Any]]:
    """Per ISO week and model: decisions made, escalated, escalated as unusual text, and
    reviews signed (accepts and overrides) of that model's predictions. The oversight view's
    counts; the guarantee monitor's weekly values come from ``audited_decisions``."""
    counts: dict[tuple[str, str], dict[str, int]] = {}

    def bucket(moment, model_id) -> dict[str, int]:
        key = (_iso_week(moment), model_id or "—")
        return counts.setdefault(key, {"decided": 0, "escalated": 0, "unusual": 0,
                                       "reviewed": 0, "overridden": 0})

    decisions = (select(EscalationRow.created, EscalationRow.decision, EscalationRow.data,
                        PredictionRow.model_id)
                 .join(PredictionRow, PredictionRow.id == EscalationRow.prediction_id)
                 .execution_options(yield_per=2000))
    for created, decision, data, model_id in session.execute(decisions):
        row = bucket(created, model_id)
        row["decided"] += 1
        row["escalated"] += decision == "escalate"
        row["unusual"] += any(code.startswith("unusual") for code in data.get("reason_codes", ()))
    reviews = (select(ReviewRow.signed_at, ReviewRow.decision, PredictionRow.model_id)
               .join(PredictionRow, PredictionRow.id == ReviewRow.prediction_id)
               .where(ReviewRow.decision != "defer").execution_options(yield_per=2000))
    for signed_at, decision, model_id in session.execute(reviews):
        row = bucket(signed_at, model_id)
        row["reviewed"] += 1
        row["overridden"] += decision == "override"
    return [{"week": week, "model_id": model, **values}
            for (week, model), values in sorted(counts.items())]


def _iso_week(moment) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"
