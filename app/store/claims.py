"""Review claims: one reviewer at a time on a case of a shared queue.

A claim is a row (case, who, until when). Taking one is a read and a write in one writer
transaction; writers are serialised from their first statement (BEGIN IMMEDIATE on SQLite, an
advisory lock on PostgreSQL: ``app.store.engine``), so two reviewers asking at once cannot both
get the case — no compare-and-swap is needed on top.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.store.schema import ReviewClaimRow

CLAIM_MINUTES = 15  # a claim left alone this long (a closed laptop) is free for the taking


def claim(session: Session, case_id: int, who: str, now: datetime,
          minutes: float = CLAIM_MINUTES) -> bool:
    """Claim (or renew) the case for ``who``; False when another holds an unexpired claim."""
    row = session.get(ReviewClaimRow, case_id)
    if row is not None and row.claimed_by != who and row.expires > now:
        return False
    expires = now + timedelta(minutes=minutes)
    if row is None:
        session.add(ReviewClaimRow(case_id=case_id, claimed_by=who, expires=expires))
    else:
        row.claimed_by, row.expires = who, expires
    return True


def release(session: Session, case_id: int, who: str | None = None) -> None:
    """Drop the case's claim (``who``'s only, when given): the case was reviewed, or left."""
    query = delete(ReviewClaimRow).where(ReviewClaimRow.case_id == case_id)
    if who is not None:
        query = query.where(ReviewClaimRow.claimed_by == who)
    session.execute(query)


def held_by_others(session: Session, who: str, now: datetime) -> dict[int, str]:
    """The cases others hold unexpired claims on, with who holds each."""
    rows = session.execute(select(ReviewClaimRow.case_id, ReviewClaimRow.claimed_by).where(
        ReviewClaimRow.claimed_by != who, ReviewClaimRow.expires > now))
    return {case_id: who for case_id, who in rows}
