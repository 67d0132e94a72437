"""The case list query: matching case ids from ``case_latest``, then the page's summaries.

Filters and sorts read ``case_latest`` alone (one row per case, each filter column indexed
with ``created``), so a page costs an index walk of page * page_size entries and the count
an index count, however many cases are stored. Only the page's ids are then joined to the
case text and the latest review. Search has one language on both databases — every word must
occur; ``word*`` matches a prefix; ``"two words"`` a phrase; letters and digits make words,
case and diacritics do not count — read by the FTS5 index on SQLite and by the ``text_tsv``
GIN index on PostgreSQL (revision 0005); other databases get a substring match.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    LargeBinary,
    Select,
    and_,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import REGCONFIG, TSVECTOR
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import FunctionElement

from app.store.canonical import iso
from app.store.errors import StoreError
from app.store.records import CaseSummary, Review
from app.store.schema import (
    AUDIT_SAMPLED,
    REVIEW_DECISIONS,
    AuditEventRow,
    CaseLatestRow,
    CaseRow,
    ReviewerRow,
    ReviewRow,
)

PREVIEW_CHARS = 160
MAX_PAGE_SIZE = 1000
SORT_KEYS = ("created", "id", "label", "confidence", "relevance")
MANY_MATCHES = 2000  # a search matching more pages through the sort index (see _ids)
# A quoted phrase, or a word with an optional '*' for a prefix; anything else is ignored,
# so no user input is an FTS5 syntax error.
TERM = re.compile(r'"([^"]*)"|(\w+)(\*?)')


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
    # True: a case a person should decide: escalated (or never decided), or an AUTO case drawn
    # for the audit sample; False: the AUTO cases not drawn.
    needs_review: bool | None = None
    audit_sample: bool | None = None  # True: drawn for the audit sample of AUTO decisions


@dataclass(frozen=True)
class CaseListQuery:
    ids: Select  # the matching case ids in the asked order; the caller pages it
    count: Select  # how many cases match (the same object as ``matches`` for a bare search)
    matches: Select | None = None  # SQLite search: how many cases the words alone match
    ids_for_many_matches: Select | None = None  # ``ids``, planned for a search matching many


SEARCH_CONFIG = "casewise_fts"  # PostgreSQL's text search configuration (revision 0005)
TEXT_TSV = literal_column("cases.text_tsv", TSVECTOR)


class _TextPreview(FunctionElement):
    """The start of the case text, as each database can cut it."""

    inherit_cache = True


@compiles(_TextPreview)
def _preview_as_bytes(element: _TextPreview, compiler: Any, **kw: Any) -> str:
    # As bytes: SQLite's substr of text stops at a NUL, and a case may hold one. A UTF-8
    # character is at most 4 bytes; summary_of decodes and cuts to PREVIEW_CHARS.
    return compiler.process(func.substr(cast(CaseRow.text, LargeBinary), 1, 4 * PREVIEW_CHARS),
                            **kw)


@compiles(_TextPreview, "postgresql")
def _preview_as_text(element: _TextPreview, compiler: Any, **kw: Any) -> str:
    # PostgreSQL text holds no NUL, and a cast to bytea would parse backslashes as escapes.
    return compiler.process(func.substr(CaseRow.text, 1, PREVIEW_CHARS), **kw)


L = aliased(CaseLatestRow, name="l")
R, RV = aliased(ReviewRow, name="r"), aliased(ReviewerRow, name="rv")
SUMMARY_COLUMNS = (
    CaseRow.id, CaseRow.created, CaseRow.source,
    _TextPreview().label("preview"),
    L.label, L.confidence, L.model_id, L.escalation,
    R.id.label("review_id"), R.decision.label("review_decision"),
    R.label.label("review_label"), R.reason, R.meaning, R.signed_at, R.case_sha256,
    R.prediction_id.label("review_prediction_id"), R.supersedes_id, RV.name.label("reviewer"),
    L.case_id.in_(select(AuditEventRow.case_id).where(AuditEventRow.kind == AUDIT_SAMPLED))
    .label("audit_sample"),
)


def search_terms(search: str) -> list[tuple[str, bool]]:
    """(words, is_prefix) for each phrase or word of the user's search."""
    terms = []
    for phrase, word, star in TERM.findall(search):
        words = " ".join(re.findall(r"\w+", phrase)) if phrase else word
        if words:
            terms.append((words, bool(star)))
    return terms


def fts_query(search: str) -> str | None:
    """User words as an FTS5 query that cannot be a syntax error: each term quoted."""
    quoted = [f'"{words}"' + ("*" if prefix else "") for words, prefix in search_terms(search)]
    return " ".join(quoted) or None


def ts_query(search: str) -> str | None:
    """User words as a PostgreSQL tsquery that cannot be a syntax error: each phrase or word
    cut into runs of letters and digits (as FTS5's tokenizer cuts them), each quoted, a
    phrase's words adjacent (``<->``), a prefix marked ``:*`` on its last word."""
    parts = []
    for words, prefix in search_terms(search):
        tokens = [f"'{token}'" for token in re.findall(r"[^\W_]+", words)]
        if tokens:
            tokens[-1] += ":*" if prefix else ""
            parts.append("(" + " <-> ".join(tokens) + ")")
    return " & ".join(parts) or None


def list_query(filters: CaseFilter, sort: str, dialect: str) -> CaseListQuery:
    """The ids query (sorted, unpaged) and the count query for ``filters``; with a search
    also the count of its matches, and on SQLite the ids query for many matches."""
    key = _sort_key(sort)
    conditions = _conditions(filters)
    terms = search_terms(filters.search) if filters.search else []
    fts = None
    indexed = dialect in ("sqlite", "postgresql")
    if terms and indexed:
        fts = _matches(filters.search or "", key == "relevance", dialect)
    elif terms:
        conditions.append(L.case_id.in_(select(CaseRow.id).where(and_(
            *[CaseRow.text.icontains(words, autoescape=True) for words, _ in terms]))))
    if key == "relevance" and fts is None:
        raise StoreError("Sorting by relevance needs a search.")
    descending = sort.startswith("-")
    if fts is None:
        return CaseListQuery(_ids(conditions, None, key, descending), _count(conditions, None))
    # The FTS index alone counts its matches: the total of a bare search, and the size
    # that picks the plan for the ids.
    matches = select(func.count()).select_from(_matches(filters.search or "", False, dialect))
    if dialect != "sqlite":
        # PostgreSQL's planner has the GIN index's statistics to choose the plan by itself,
        # so the matches are not counted apart (a second scan for a common word).
        return CaseListQuery(_ids(conditions, fts, key, descending),
                             _count(conditions, fts) if conditions else matches)
    return CaseListQuery(
        _ids(conditions, fts, key, descending),
        _count(conditions, fts) if conditions else matches, matches,
        None if key == "relevance" else _ids(conditions, fts, key, descending, probe=True))


def summaries(ids: Sequence[int]) -> Select:
    """The summary columns of the given cases (in no order: the caller keeps its own)."""
    return (select(*SUMMARY_COLUMNS).select_from(CaseRow)
            .join(L, L.case_id == CaseRow.id)
            .outerjoin(R, R.id == L.review_id)
            .outerjoin(RV, RV.id == R.reviewer_id)
            .where(CaseRow.id.in_(ids)))


def _matches(search: str, ranked: bool, dialect: str) -> Any:
    """The matching case ids (``case_id``), and their ``rank`` (lower is better) if asked."""
    if dialect == "postgresql":
        return _tsvector_matches(search, ranked)
    return _fts_matches(search, ranked)


def _tsvector_matches(search: str, ranked: bool) -> Any:
    query = func.to_tsquery(cast(literal(SEARCH_CONFIG), REGCONFIG), ts_query(search))
    columns = [CaseRow.id.label("case_id")]
    if ranked:  # how often the words occur (as FTS5's bm25 weighs them); negated, lower is
        # better. Not ts_rank_cd: cover density costs more for a common word (README).
        columns.append((-func.ts_rank(TEXT_TSV, query)).label("rank"))
    return select(*columns).where(TEXT_TSV.op("@@")(query)).subquery("fts")


def _fts_matches(search: str, ranked: bool) -> Any:
    """The matching case ids, with their FTS5 rank only when sorting by it: ranking (bm25)
    costs more than the match itself (about 120 ms against 25 ms for 100,000 matches)."""
    columns = "rowid AS case_id, rank AS rank" if ranked else "rowid AS case_id"
    matches = text(f"SELECT {columns} FROM cases_fts WHERE cases_fts MATCH :fts_words")
    types = {"case_id": Integer, "rank": Float} if ranked else {"case_id": Integer}
    return (matches.bindparams(fts_words=fts_query(search)).columns(**types)
            .subquery("fts"))


def _ids(conditions: list[ColumnElement[bool]], fts: Any, key: str, descending: bool,
         probe: bool = False) -> Select:
    """The ids query. With a search, SQLite looks up each match and sorts them all, which is
    right for a few hundred matches and slow for 100,000 (40 ms); ``probe`` makes it walk
    the sort (or filter) index instead, checking each case against the matches, and stop
    after the page (12 ms), which is slow for a handful of matches. The FTS5 module gives
    SQLite no estimate to choose by, so the caller chooses from the count of matches."""
    query = select(L.case_id).where(*conditions)
    if key == "relevance":  # FTS5 rank: lower is better; computed for every match
        return query.join(fts, fts.c.case_id == L.case_id).order_by(fts.c.rank, L.case_id)
    if fts is not None:
        case_id = L.case_id + 0 if probe else L.case_id  # an expression is no lookup key
        query = query.where(case_id.in_(select(fts.c.case_id)))
    column = {"created": L.created, "id": L.case_id, "label": L.label,
              "confidence": L.confidence}[key]
    if descending:
        return query.order_by(column.desc(), L.case_id.desc())
    return query.order_by(column.asc(), L.case_id.asc())


def _count(conditions: list[ColumnElement[bool]], fts: Any) -> Select:
    query = select(func.count()).select_from(L).where(*conditions)
    return query if fts is None else query.where(L.case_id.in_(select(fts.c.case_id)))


def _sort_key(sort: str) -> str:
    key = sort.lstrip("-")
    if key not in SORT_KEYS:
        raise StoreError(f"Cannot sort by {sort!r}; use one of {', '.join(SORT_KEYS)} "
                         "(a leading '-' sorts descending).")
    return key


def _conditions(f: CaseFilter) -> list[ColumnElement[bool]]:
    checks: list[ColumnElement[bool]] = []
    if f.label is not None:
        checks.append(L.label == f.label)
    if f.decision is not None:
        if f.decision not in REVIEW_DECISIONS:
            raise StoreError(f"decision must be one of {', '.join(REVIEW_DECISIONS)} "
                             f"(the review's), not {f.decision!r}; use escalated= for "
                             "auto/escalate.")
        checks.append(L.review_decision == f.decision)
    if f.escalated is not None:
        checks.append(L.escalation == ("escalate" if f.escalated else "auto"))
    if f.reviewed is not None:
        checks.append(L.reviewed == bool(f.reviewed))
    if f.reviewer is not None:
        checks.append(L.reviewer_id == select(ReviewerRow.id)
                      .where(ReviewerRow.name == f.reviewer).scalar_subquery())
    if f.model_id is not None:
        checks.append(L.model_id == f.model_id)
    if f.date_from is not None:
        checks.append(_bound(f.date_from, upper=False))
    if f.date_to is not None:
        checks.append(_bound(f.date_to, upper=True))
    sampled = L.case_id.in_(select(AuditEventRow.case_id)
                            .where(AuditEventRow.kind == AUDIT_SAMPLED))
    if f.audit_sample is not None:
        checks.append(sampled if f.audit_sample else ~sampled)
    if f.needs_review is not None:
        wanted = or_(L.escalation.is_distinct_from("auto"), sampled)
        checks.append(wanted if f.needs_review else ~wanted)
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
        return L.created <= moment if upper else L.created >= moment
    start = datetime.combine(value, datetime.min.time(), UTC)
    return L.created < start + timedelta(days=1) if upper else L.created >= start


def _preview(head: bytes | str | None) -> str:
    """The start of a case as text: NULs kept (views escape them), a character cut in half
    by the byte limit dropped."""
    if head is None:
        return ""
    text = head if isinstance(head, str) else bytes(head).decode("utf-8", errors="ignore")
    return text[:PREVIEW_CHARS]


def summary_of(row: Any) -> CaseSummary:
    """A row of ``summaries`` as the case list's ``CaseSummary``."""
    review = None if row.review_id is None else Review(
        id=row.review_id, case_id=row.id, reviewer=row.reviewer, decision=row.review_decision,
        label=row.review_label, reason=row.reason, meaning=row.meaning,
        signed_at=iso(row.signed_at), case_sha256=row.case_sha256,
        prediction_id=row.review_prediction_id, supersedes_id=row.supersedes_id)
    return CaseSummary(id=row.id, created=iso(row.created), source=row.source,
                       preview=_preview(row.preview), label=row.label, confidence=row.confidence,
                       model_id=row.model_id, escalation=row.escalation, review=review,
                       audit_sample=bool(row.audit_sample))
