"""The case list query: each case with its latest prediction, escalation and review.

"Latest" is the highest id per case, found through the (case_id, id) indexes; nothing is
denormalised, so the records stay append-only. Search uses the FTS5 index on SQLite (every
word must occur; ``word*`` matches a prefix) and a plain substring match elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, Integer, Select, and_, func, or_, select, text
from sqlalchemy.orm import aliased

from app.store.errors import StoreError
from app.store.schema import (
    REVIEW_DECISIONS,
    CaseRow,
    EscalationRow,
    PredictionRow,
    ReviewerRow,
    ReviewRow,
)

PREVIEW_CHARS = 160
MAX_PAGE_SIZE = 1000
SORT_KEYS = ("created", "id", "label", "confidence", "relevance")


@dataclass(frozen=True)
class CaseFilter:
    label: str | None = None  # the model's latest label
    decision: str | None = None  # the latest review's decision: accept | override | defer
    escalated: bool | None = None  # the latest escalation: True escalate, False auto
    reviewed: bool | None = None  # True: latest review accepts or overrides; False: none/defer
    reviewer: str | None = None  # who signed the latest review
    model_id: str | None = None  # the model of the latest prediction
    date_from: date | datetime | str | None = None  # case created at or after (UTC)
    date_to: date | datetime | str | None = None  # at or before; a date includes the whole day
    search: str | None = None


P, E, R, RV = (aliased(PredictionRow, name="p"), aliased(EscalationRow, name="e"),
               aliased(ReviewRow, name="r"), aliased(ReviewerRow, name="rv"))
SUMMARY_COLUMNS = (
    CaseRow.id, CaseRow.created, CaseRow.source,
    func.substr(CaseRow.text, 1, PREVIEW_CHARS).label("preview"),
    P.label, P.confidence, P.model_id, E.decision.label("escalation"),
    R.id.label("review_id"), R.decision.label("review_decision"),
    R.label.label("review_label"), R.reason, R.meaning, R.signed_at, R.case_sha256,
    R.prediction_id.label("review_prediction_id"), R.supersedes_id, RV.name.label("reviewer"),
)


def _latest(model: Any) -> Any:
    return (select(func.max(model.id)).where(model.case_id == CaseRow.id)
            .correlate(CaseRow).scalar_subquery())


def fts_query(search: str) -> str | None:
    """User words as an FTS5 query that cannot be a syntax error: each word quoted."""
    words = re.findall(r"\w+\*?", search)
    quoted = [f'"{w.rstrip("*")}"' + ("*" if w.endswith("*") else "") for w in words]
    return " ".join(quoted) or None


def case_list(filters: CaseFilter, sort: str, dialect: str) -> tuple[Select, Any]:
    """The summary query (unsorted, unpaged) and the FTS subquery when searching on SQLite."""
    query = (select(*SUMMARY_COLUMNS).select_from(CaseRow)
             .outerjoin(P, P.id == _latest(PredictionRow))
             .outerjoin(E, E.id == _latest(EscalationRow))
             .outerjoin(R, R.id == _latest(ReviewRow))
             .outerjoin(RV, RV.id == R.reviewer_id))
    query = query.where(*_conditions(filters))
    fts = None
    words = fts_query(filters.search) if filters.search else None
    if words and dialect == "sqlite":
        fts = (text("SELECT rowid AS case_id, rank AS rank FROM cases_fts "
                    "WHERE cases_fts MATCH :fts_words").bindparams(fts_words=words)
               .columns(case_id=Integer, rank=Float).subquery("fts"))
        query = query.join(fts, fts.c.case_id == CaseRow.id)
    elif words:
        terms = [w.rstrip("*") for w in re.findall(r"\w+\*?", filters.search or "")]
        query = query.where(and_(*[CaseRow.text.icontains(t, autoescape=True) for t in terms]))
    if sort.lstrip("-") == "relevance" and fts is None:
        raise StoreError("Sorting by relevance needs a search.")
    return query, fts


def ordered(query: Select, fts: Any, sort: str) -> Select:
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise StoreError(f"Cannot sort by {sort!r}; use one of {', '.join(SORT_KEYS)} "
                         "(a leading '-' sorts descending).")
    column = {"created": CaseRow.created, "id": CaseRow.id, "label": P.label,
              "confidence": P.confidence}.get(key)
    if key == "relevance":
        return query.order_by(fts.c.rank, CaseRow.id)  # FTS5 rank: lower is better
    if sort.startswith("-"):
        return query.order_by(column.desc(), CaseRow.id.desc())
    return query.order_by(column.asc(), CaseRow.id.asc())


def _conditions(f: CaseFilter) -> list[ColumnElement[bool]]:
    checks: list[ColumnElement[bool]] = []
    if f.label is not None:
        checks.append(P.label == f.label)
    if f.decision is not None:
        if f.decision not in REVIEW_DECISIONS:
            raise StoreError(f"decision must be one of {', '.join(REVIEW_DECISIONS)} "
                             f"(the review's), not {f.decision!r}; use escalated= for "
                             "auto/escalate.")
        checks.append(R.decision == f.decision)
    if f.escalated is not None:
        checks.append(E.decision == ("escalate" if f.escalated else "auto"))
    if f.reviewed is True:
        checks.append(R.decision.in_(("accept", "override")))
    elif f.reviewed is False:
        checks.append(or_(R.id.is_(None), R.decision == "defer"))
    if f.reviewer is not None:
        checks.append(RV.name == f.reviewer)
    if f.model_id is not None:
        checks.append(P.model_id == f.model_id)
    if f.date_from is not None:
        checks.append(_bound(f.date_from, upper=False))
    if f.date_to is not None:
        checks.append(_bound(f.date_to, upper=True))
    return checks


def _bound(value: date | datetime | str, upper: bool) -> ColumnElement[bool]:
    if isinstance(value, str):
        try:
            value = (datetime.fromisoformat(value) if len(value) > 10
                     else date.fromisoformat(value))
        except ValueError as exc:
            raise StoreError(f"{value!r} is not a date (YYYY-MM-DD) or an ISO time.") from exc
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return CaseRow.created <= moment if upper else CaseRow.created >= moment
    start = datetime.combine(value, datetime.min.time(), UTC)
    return CaseRow.created < start + timedelta(days=1) if upper else CaseRow.created >= start
