"""The audit trail: an append-only, hash-chained log of everything done to a case.

Each event's ``hash`` is the SHA-256 of the canonical JSON of its fields (id, time, kind,
case_id, actor, payload, prev_hash), and ``prev_hash`` is the hash of the event before it, so
changing, removing or inserting an event breaks every link after it. Events about a stored
record (a case, prediction, review, ...) cite the record's own hash, so ``verify`` also catches
a record changed behind the app's back, and a record with no event.

What a chain cannot show by itself is a rewrite of everything from some point on with fresh
hashes. Signatures close that: each review's signature and each signed checkpoint cover the
chain head of their moment, so a recomputed chain breaks every one made after the change
(``app.store.verify``); the head printed on an export anchors it outside the file too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.canonical import GENESIS_HASH, as_plain_dict, canonical_json, hash_of, iso
from app.store.records import AuditEvent
from app.store.schema import (
    AttributionRow,
    AuditEventRow,
    Base,
    CaseRow,
    EscalationRow,
    OpinionRow,
    PredictionRow,
    ReviewRow,
    SignatureRow,
    SigningKeyRow,
    UserRow,
)
from models.progress import ProgressTracker

# Events that cite a record, and the table it is in. Every row of these tables has one.
RECORD_EVENTS: dict[str, type[Base]] = {
    "case_created": CaseRow, "predicted": PredictionRow, "explained": AttributionRow,
    "escalated": EscalationRow, "llm_asked": OpinionRow, "reviewed": ReviewRow,
    "user_created": UserRow, "key_created": SigningKeyRow, "signed": SignatureRow,
}
# Events about the app and its accounts rather than a record; callers log these directly.
APP_EVENTS = ("exported", "policy_refitted", "model_activated", "sign_in", "sign_in_failed",
              "account_locked", "account_unlocked", "password_changed", "password_reset",
              "key_rotated", "user_disabled", "user_enabled", "judged", "models_compared",
              "promotion_forced", "guarantee_alarm", "guarantee_alarm_ended",
              "audit_sampled")
EVENT_KINDS = (*RECORD_EVENTS, *APP_EVENTS)


def _jsonable(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def fields_sha256(fields: dict[str, Any]) -> str:
    """The hash of a stored row, from its columns (by column name) except the id."""
    return hash_of({name: _jsonable(v) for name, v in fields.items() if name != "id"})


def column_values(row: Base) -> dict[str, Any]:
    """A mapped row's values by column name (``metadata``, not the attribute ``meta``)."""
    mapper = sa_inspect(row).mapper
    return {column.name: getattr(row, prop.key)
            for prop in mapper.column_attrs for column in prop.columns}


def row_sha256(row: Base) -> str:
    return fields_sha256(column_values(row))


def cite(row: Base) -> dict[str, Any]:
    """How an event names the record it is about (the row must be flushed: it needs its id)."""
    return cite_values(row.__tablename__, column_values(row))


def cite_values(table: str, values: dict[str, Any]) -> dict[str, Any]:
    """``cite`` for a row written without the ORM: ``values`` by column name, id included."""
    return {"table": table, "id": values["id"], "sha256": fields_sha256(values)}


def event_hash(fields: dict[str, Any]) -> str:
    return hash_of({key: fields[key] for key in
                    ("id", "time", "kind", "case_id", "actor", "payload", "prev_hash")})


def append(session: Session, kind: str, actor: str, payload: dict[str, Any],
           at: datetime, case_id: int | None = None) -> AuditEvent:
    """Add the next link. Call inside the write transaction that made the change it records."""
    event = Chain(session).link(kind, actor, payload, at, case_id)
    session.add(AuditEventRow(**event_row(event)))
    return event


class Chain:
    """The chain's last link, read once: a batch links many events to it without reading the
    table back between them (the caller inserts the rows, in order, in the same transaction)."""

    def __init__(self, session: Session) -> None:
        # Writers are serialised from their first statement (BEGIN IMMEDIATE on SQLite, an
        # advisory lock on PostgreSQL: app.store.engine), so no other writer moves the head.
        last = head(session)
        self.last_id, self.last_hash = last if last else (0, GENESIS_HASH)

    def link(self, kind: str, actor: str, payload: dict[str, Any], at: datetime,
             case_id: int | None = None) -> AuditEvent:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown audit event kind {kind!r}")
        fields = {"id": self.last_id + 1, "time": iso(at), "kind": kind, "case_id": case_id,
                  "actor": actor, "payload": as_plain_dict(payload, "payload"),
                  "prev_hash": self.last_hash}
        event = AuditEvent(**fields, hash=event_hash(fields))
        self.last_id, self.last_hash = event.id, event.hash
        return event


def event_row(event: AuditEvent) -> dict[str, Any]:
    """The audit_events row of an event: the payload as the canonical JSON that was hashed."""
    return {"id": event.id, "time": event.time, "kind": event.kind, "case_id": event.case_id,
            "actor": event.actor, "payload": canonical_json(event.payload),
            "prev_hash": event.prev_hash, "hash": event.hash}


def to_event(row: Any) -> AuditEvent:
    return AuditEvent(id=row.id, time=row.time, kind=row.kind, case_id=row.case_id,
                      actor=row.actor, payload=json.loads(row.payload),
                      prev_hash=row.prev_hash, hash=row.hash)


def head(session: Session) -> tuple[int, str] | None:
    last = session.execute(select(AuditEventRow.id, AuditEventRow.hash)
                           .order_by(AuditEventRow.id.desc()).limit(1)).first()
    return None if last is None else (last.id, last.hash)


@dataclass
class ChainWalk:
    count: int  # events walked
    problems: list[tuple[int | None, str]]  # the first broken link, if any
    hashes: dict[int, str]  # the hashes of the events asked for (signed heads)


def walk_chain(session: Session, batch: int, tracker: ProgressTracker,
               wanted: set[int] | frozenset[int] = frozenset()) -> ChainWalk:
    """Walk every link in id order with constant memory (the chain must stay checkable at
    100k cases), keeping the hashes of the ``wanted`` event ids."""
    table = AuditEventRow.__table__
    rows = session.execute(select(table).order_by(table.c.id)
                           .execution_options(yield_per=batch))
    walk = ChainWalk(0, [], {})
    prev_id, prev_hash = 0, GENESIS_HASH
    for row in rows:
        walk.count += 1
        if walk.count % batch == 0:
            tracker.advance(batch)
        problem = _link_problem(row, prev_id, prev_hash)
        if problem:
            walk.problems.append((row.id, problem))
            rows.close()
            return walk
        if row.id in wanted:
            walk.hashes[row.id] = row.hash
        prev_id, prev_hash = row.id, row.hash
    return walk


def _link_problem(row: Any, prev_id: int, prev_hash: str) -> str | None:
    if row.id != prev_id + 1:
        return f"events {prev_id + 1} to {row.id - 1} are missing before event {row.id}"
    if row.prev_hash != prev_hash:
        return f"event {row.id} does not follow event {prev_id} (prev_hash differs)"
    try:
        fields = {**row._mapping, "payload": json.loads(row.payload)}
    except ValueError:
        return f"event {row.id} has a payload that is not JSON"
    if event_hash(fields) != row.hash:
        return f"event {row.id} was changed after it was written (its hash differs)"
    return None


def walk_records(session: Session, kind: str, model: type[Base], batch: int,
                  tracker: ProgressTracker) -> list[tuple[int | None, str]]:
    events_q = (select(AuditEventRow.id, AuditEventRow.payload)
                .where(AuditEventRow.kind == kind).order_by(AuditEventRow.id))
    table = model.__table__
    records = _peekable(session.execute(select(table).order_by(table.c.id)
                                        .execution_options(yield_per=batch)))
    for seen, event in enumerate(session.execute(events_q.execution_options(yield_per=batch)),
                                 start=1):
        if seen % batch == 0:
            tracker.advance(batch)
        cited = json.loads(event.payload).get("record") or {}
        if records.peek() is not None and records.peek().id < cited.get("id", 0):
            return [(None, f"{table.name} row {records.peek().id} has no audit event")]
        row = records.next()
        if row is None or row.id != cited.get("id"):
            return [(event.id, f"{table.name} row {cited.get('id')} cited by event "
                               f"{event.id} is missing")]
        if fields_sha256(dict(row._mapping)) != cited.get("sha256"):
            return [(event.id, f"{table.name} row {row.id} was changed after event "
                               f"{event.id} recorded it")]
    extra = records.peek()
    return [] if extra is None else [(None, f"{table.name} row {extra.id} has no audit event")]


class _peekable:
    def __init__(self, rows: Any) -> None:
        self._rows: Iterator[Any] = iter(rows)
        self._next = next(self._rows, None)

    def peek(self) -> Any:
        return self._next

    def next(self) -> Any:
        current, self._next = self._next, next(self._rows, None)
        return current
