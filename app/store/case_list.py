"""Keeping ``case_latest`` (the case list's row of each case) in step with the records.

Every write of a case, prediction, escalation decision or review updates the row in the same
transaction. Writers are serialised (BEGIN IMMEDIATE), so the record just written has the
highest id of its kind: it is the latest, and copying it is all there is to do.
``first_disagreement`` re-derives the rows from the records, for ``verify_chain``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, func, or_, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from app.store.engine import writer
from app.store.schema import (
    CaseLatestRow,
    CaseRow,
    EscalationRow,
    PredictionRow,
    ReviewRow,
)

log = logging.getLogger(__name__)

DONE_DECISIONS = ("accept", "override")  # a review that settles the case; defer does not
STATISTICS_MIN_ROWS = 1000  # below this SQLite's default guesses plan as well
STATISTICS_DRIFT = 2.0  # re-take them when the table grew (or shrank) this many times


def values_for_new_case(case_id: int, created: datetime) -> dict[str, Any]:
    return {"case_id": case_id, "created": created, "label": None, "confidence": None,
            "model_id": None, "escalation": None, "review_id": None, "review_decision": None,
            "reviewer_id": None, "reviewed": False}


def on_case(session: Session, case: CaseRow) -> None:
    session.add(CaseLatestRow(**values_for_new_case(case.id, case.created)))


def on_prediction(session: Session, row: PredictionRow) -> None:
    latest = _row(session, row.case_id)
    latest.label, latest.confidence, latest.model_id = row.label, row.confidence, row.model_id


def on_escalation(session: Session, row: EscalationRow) -> None:
    _row(session, row.case_id).escalation = row.decision


def on_review(session: Session, row: ReviewRow) -> None:
    latest = _row(session, row.case_id)
    latest.review_id, latest.review_decision = row.id, row.decision
    latest.reviewer_id, latest.reviewed = row.reviewer_id, row.decision in DONE_DECISIONS


def _row(session: Session, case_id: int) -> CaseLatestRow:
    """The case's row; made from the case if missing (a case someone inserted by hand)."""
    row = session.get(CaseLatestRow, case_id)
    if row is None:
        case = session.get(CaseRow, case_id)
        assert case is not None, "records are written for stored cases only"
        row = CaseLatestRow(**values_for_new_case(case_id, case.created))
        session.add(row)
    return row


def _latest_id(model: Any) -> Any:
    return (select(func.max(model.id)).where(model.case_id == CaseRow.id)
            .correlate(CaseRow).scalar_subquery())


def _disagreement_query() -> Select:
    latest = aliased(CaseLatestRow, name="l")
    p, e, r = (aliased(PredictionRow, name="p"), aliased(EscalationRow, name="e"),
               aliased(ReviewRow, name="r"))
    reviewed = and_(r.id.is_not(None), r.decision.in_(DONE_DECISIONS))
    differs = or_(
        latest.case_id.is_(None),
        latest.created.is_distinct_from(CaseRow.created),
        latest.label.is_distinct_from(p.label),
        latest.confidence.is_distinct_from(p.confidence),
        latest.model_id.is_distinct_from(p.model_id),
        latest.escalation.is_distinct_from(e.decision),
        latest.review_id.is_distinct_from(r.id),
        latest.review_decision.is_distinct_from(r.decision),
        latest.reviewer_id.is_distinct_from(r.reviewer_id),
        latest.reviewed.is_distinct_from(reviewed),
    )
    return (select(CaseRow.id).select_from(CaseRow)
            .outerjoin(latest, latest.case_id == CaseRow.id)
            .outerjoin(p, p.id == _latest_id(PredictionRow))
            .outerjoin(e, e.id == _latest_id(EscalationRow))
            .outerjoin(r, r.id == _latest_id(ReviewRow))
            .where(differs).order_by(CaseRow.id).limit(1))


def first_disagreement(session: Session) -> int | None:
    """The first case whose case list row differs from its latest records, or None.

    The list is what a reviewer works from ("not reviewed yet"), so a row edited behind the
    app's back must not pass for the truth even though the table is not part of the chain.
    """
    return session.scalar(_disagreement_query())


def refresh_statistics(engine: Engine) -> None:
    """``ANALYZE case_latest`` when its size moved by ``STATISTICS_DRIFT`` since the last.

    Without statistics SQLite cannot tell a filter that keeps 20 % of the cases from one
    that keeps 80 %, and for several filters, or a filter with another sort, it may walk the
    wrong index (30 ms instead of 4 ms at 100,000 cases). Taking them costs about 0.1 s at
    100,000 cases, so it is done on close, when the table size moved by a factor of two
    since they were taken (as SQLite's own ``PRAGMA optimize`` would). SQLite only; a store
    that cannot be written (or is busy) just keeps the old statistics.
    """
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(CaseLatestRow)) or 0
            counted = _analyzed_rows(connection)
        if rows < STATISTICS_MIN_ROWS or (
                counted and counted / STATISTICS_DRIFT <= rows <= counted * STATISTICS_DRIFT):
            return
        with writer(engine).begin() as connection:
            connection.execute(text("ANALYZE case_latest"))
    except DBAPIError as exc:
        log.info("planner statistics not refreshed: %s", exc)


def _analyzed_rows(connection: Any) -> int:
    """The row count recorded by the last ANALYZE of case_latest, or 0 for none."""
    if connection.scalar(text("SELECT count(*) FROM sqlite_master "
                              "WHERE name = 'sqlite_stat1'")) == 0:
        return 0
    stat = connection.scalar(text("SELECT stat FROM sqlite_stat1 WHERE tbl = 'case_latest' "
                                  "AND idx = 'ix_case_latest_created'"))
    return int(stat.split()[0]) if stat else 0
