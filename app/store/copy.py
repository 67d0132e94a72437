"""``casewise db copy``: a whole case history from one database into another (a personal
SQLite file into a team's PostgreSQL database, back, or into a backup file).

What is copied: every table of the schema (``Base.metadata``), in foreign-key order, with its
ids, as stored: JSON columns as their exact text (re-encoding could change the bytes records
are hashed over), datetimes converted by their column type. Not copied, because the target
makes its own: the migrations' version table, SQLite's FTS5 index (``cases_fts*``, filled by
the target's triggers as cases are inserted) and PostgreSQL's generated ``cases.text_tsv``.
None of them is in ``Base.metadata``, so reading the tables from it leaves them out. Nor are
review claims (who is reviewing what right now, on the source): coordination, not history.

Safety: the source must verify (chain, records, signatures, checkpoints, guards) before
anything is written. The target is opened with ``open_store`` (so it is migrated to the
current schema) and everything is written in ONE transaction on its writer engine; before
that transaction commits, the target is verified inside it (``verify_history`` takes the
session). A refusal, an error, a cancel or a Ctrl-C rolls it all back: the target is left
exactly as ``open_store`` left it (a new file or an empty database has the current schema and
no rows; an existing one its rows, unchanged).

The target must be empty — no row in any table but ``store_facts``, which the migrations fill
— unless ``append``. With ``append`` the target must hold an earlier copy of this history:

- its chain head (id, hash) is an event of the source's chain with the same hash, so both
  chains agree up to it (each event hashes the one before); an empty target is a prefix too;
- every row of an append-only table the target holds is in the source, unchanged, under the
  same key (a checkpoint signed in the target since, say, is a divergence and refuses);
- then the source's rows the target lacks are inserted, and the rows of the tables that are
  updated in place (``models``, ``user_state``, ``key_secrets``, ``case_latest``) are set to
  the source's values. Rows only the target has in those tables are kept.

So ``append`` brings a backup up to date with the history it was taken from; it never merges
two histories that both went on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    Row,
    Table,
    Text,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app.store import audit, case_list
from app.store.database import open_store
from app.store.engine import writer
from app.store.errors import StoreError, translate
from app.store.repository import CaseRepository
from app.store.schema import (
    ACCOUNTS_FROM_REVIEW,
    APPEND_ONLY_TABLES,
    AuditEventRow,
    Base,
    JSONText,
)
from app.store.verify import verify_history
from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled

CHUNK = 5000  # rows read, looked up in the target and inserted at a time
FACTS = "store_facts"


class CopyRefused(StoreError):
    """The copy was refused; nothing was written to the target. The message says why and
    what to do."""


@dataclass(frozen=True)
class CopyReport:
    """What a copy did: rows written per table (in copy order), the target's chain head
    after it, and how long it took."""

    source: str
    target: str
    tables: tuple[tuple[str, int], ...]
    head: tuple[int, str] | None
    seconds: float
    appended: bool = False

    @property
    def rows(self) -> int:
        return sum(count for _table, count in self.tables)

    def summary(self) -> str:
        head = f"chain head {self.head[0]}:{self.head[1]}" if self.head else "no events"
        return (f"{'appended' if self.appended else 'copied'} {self.rows} rows of "
                f"{len(self.tables)} tables from {self.source} to {self.target} in "
                f"{self.seconds:.1f} s; the copy verifies ({head})")


def copy_history(source: str | Path, target: str | Path, *, append: bool = False,
                 progress: ProgressCallback | None = None,
                 cancel: CancelFlag | None = None) -> CopyReport:
    """Copy the history at ``source`` (a file or an SQLAlchemy URL) into ``target``.

    Raises CopyRefused (nothing written) when the source does not verify, the target is not
    empty (without ``append``) or not an earlier copy of the source (with it), or the copy
    would not verify; ``Cancelled`` when ``cancel`` is set (the target is rolled back);
    another StoreError when a database fails.
    """
    started = time.monotonic()
    if "://" not in str(source) and not Path(source).expanduser().is_file():
        # open_store would create an empty history there: a mistyped path copies nothing.
        raise CopyRefused(f"There is no case history at {source}; give an existing file or a "
                          "database URL as the source.")
    with open_store(source, actor="db copy") as src:
        checked = src.verify_chain(_named(progress, "the source"))
        if not checked.ok:
            raise CopyRefused(
                f"The source history {src.location} does not verify ({checked.reason}); "
                f"nothing was copied. Run `casewise audit verify --db {src.location}` to see "
                "every finding, and copy a history that verifies (a backup, if this one was "
                "damaged or changed outside Casewise).")
        raise_if_cancelled(cancel)
        with open_store(target, actor="db copy") as dst:
            if dst.location == src.location:
                raise CopyRefused(f"The source and the target are the same database "
                                  f"({src.location}).")
            try:
                tables, head = _copy(src, dst, append, progress, cancel)
            except DBAPIError as exc:
                raise translate(exc, dst.location) from exc
            return CopyReport(src.location, dst.location, tables, head,
                              time.monotonic() - started, append)


NOT_COPIED = ("review_claims",)


def _copy(src: CaseRepository, dst: CaseRepository, append: bool,
          progress: ProgressCallback | None, cancel: CancelFlag | None
          ) -> tuple[tuple[tuple[str, int], ...], tuple[int, str] | None]:
    # The repositories' engines: this module is part of the store, and the copy must run in
    # one transaction of each (a snapshot of the source, the writer's lock on the target).
    with src._engine.connect() as reading, reading.begin(), \
            writer(dst._engine).connect() as writing, writing.begin():
        # store_facts first (it refers to nothing): whether the target had reviews decides
        # whether its accounts fact may be replaced (_replace_facts).
        ordered = sorted((t for t in Base.metadata.sorted_tables if t.name not in NOT_COPIED),
                         key=lambda t: t.name != FACTS)
        tables = [(table, _raw(table)) for table in ordered]
        _check_target(reading, writing, dst.location, append, [t for t, _ in tables])
        counts = {table.name: reading.scalar(select(func.count()).select_from(table)) or 0
                  for table, _raw_table in tables}
        tracker = ProgressTracker("copying the case history", sum(counts.values()), progress)
        tracker.report()
        copied = []
        for table, raw in tables:
            copied.append((table.name, _copy_table(reading, writing, raw, tracker, cancel,
                                                   dst.location)))
        if writing.dialect.name == "postgresql":
            _advance_sequences(writing, [table for table, _raw_table in tables])
        raise_if_cancelled(cancel)
        head = _verify_target(writing, dst.location, _named(progress, "the copy"))
        # Leaving the with-block commits; any exception above rolled everything back.
    return tuple(copied), head


def _named(progress: ProgressCallback | None, whose: str) -> ProgressCallback | None:
    """The callback with ``whose`` verification it is in the stage name: the source's and
    the copy's would otherwise both read "verifying the audit trail"."""
    if progress is None:
        return None
    return lambda step: progress(replace(step, stage=f"{step.stage} of {whose}"))


def _raw(table: Table) -> Table:
    """The table as the copy reads and writes it: JSON columns as plain text (their stored
    bytes, not decoded and re-encoded), every other column with its own type (datetimes
    must be converted between SQLite's text and PostgreSQL's timestamptz)."""
    columns = [Column(c.name, Text() if isinstance(c.type, JSONText) else c.type,
                      primary_key=c.primary_key, autoincrement=False) for c in table.columns]
    return Table(table.name, MetaData(), *columns)


def _check_target(reading: Connection, writing: Connection, location: str, append: bool,
                  tables: Sequence[Table]) -> None:
    """An empty target, or (``append``) one whose chain is a prefix of the source's."""
    filled = [t.name for t in tables
              if t.name != FACTS and writing.scalar(select(func.count()).select_from(t))]
    if not append:
        if filled:
            named = ", ".join(filled[:3]) + (", ..." if len(filled) > 3 else "")
            raise CopyRefused(
                f"The target {location} is not empty (it has rows in {named}); "
                "nothing was copied. Copy into a new file or an empty database, or give "
                "--append to bring an earlier copy of this same history up to date.")
        return
    with Session(bind=writing) as session:
        head = audit.head(session)
    if head is None:
        return
    event_id, digest = head
    theirs = reading.scalar(select(AuditEventRow.hash).where(AuditEventRow.id == event_id))
    if theirs != digest:
        raise CopyRefused(
            f"The target {location} is not an earlier copy of the source: its chain head "
            f"(event {event_id}) is {'not in' if theirs is None else 'different in'} the "
            "source's chain, so the two histories went separate ways; nothing was copied. "
            "Copy into an empty database instead.")


def _copy_table(reading: Connection, writing: Connection, table: Table,
                tracker: ProgressTracker, cancel: CancelFlag | None, location: str) -> int:
    """Insert the source's rows the target lacks and update the rows of the tables that
    change in place; refuse rows of append-only tables that differ. Returns rows written."""
    key = _key(table)
    append_only = table.name in APPEND_ONLY_TABLES
    inserted = updated = matched = 0
    for chunk in _chunks(reading, table):
        raise_if_cancelled(cancel)
        rows = [dict(row._mapping) for row in chunk]
        held = {row[key.name]: row for row in writing.execute(
            select(*table.columns).where(key.in_([r[key.name] for r in rows]))).mappings()}
        new = [r for r in rows if r[key.name] not in held]
        changed = [r for r in rows if r[key.name] in held and dict(held[r[key.name]]) != r]
        matched += len(rows) - len(new)
        if changed and append_only:
            if table.name != FACTS or not _replace_facts(writing, changed, location):
                raise _diverged(location, table.name, changed[0][key.name])
        elif changed:
            writing.execute(table.update().where(key == bindparam("_key")),
                            [{**r, "_key": r[key.name]} for r in changed])
        if new:
            writing.execute(table.insert(), new)
        inserted += len(new)
        updated += len(changed)
        tracker.advance(len(rows), table.name)
    if append_only:
        held_total = writing.scalar(select(func.count()).select_from(table)) or 0
        if held_total - inserted != matched:  # the target holds rows the source lacks
            raise _diverged(location, table.name, None)
    return inserted + updated


def _key(table: Table) -> Column[Any]:
    (key,) = table.primary_key.columns  # every table of the schema has a one-column key
    return key


def _chunks(reading: Connection, table: Table) -> Iterator[Sequence[Row[Any]]]:
    """The source's rows in key order, CHUNK at a time (streamed: a server-side cursor on
    PostgreSQL, SQLite's own lazy cursor)."""
    result = reading.execution_options(stream_results=True, yield_per=CHUNK).execute(
        select(*table.columns).order_by(_key(table)))
    yield from result.partitions(CHUNK)


def _diverged(location: str, table: str, key: object) -> CopyRefused:
    which = (f"row {key} of {table} differs from the source's" if key is not None
             else f"{table} holds rows the source does not")
    return CopyRefused(
        f"The target {location} is not an earlier copy of the source: its {which}, so the "
        "two histories went separate ways; nothing was copied. Copy into an empty database "
        "instead.")


def _replace_facts(writing: Connection, changed: list[dict[str, Any]], location: str) -> bool:
    """The one fact a fresh target holds that may differ: the migrations wrote
    ``accounts_from_review_id`` = 0 (it had no reviews), while a source migrated from a
    history with reviews from before accounts holds a higher id; without the source's value
    those reviews would read as unsigned. ``store_facts`` is append-only, so the guard is
    lifted for this one UPDATE and put back as it was, in the same transaction (it commits
    with the guard in place, or not at all). Only on a target without reviews, where the
    fact cannot have excused anything yet. False: not this case (the caller refuses)."""
    if [r["name"] for r in changed] != [ACCOUNTS_FROM_REVIEW] or writing.scalar(
            text("SELECT count(*) FROM reviews")):
        return False
    postgresql = writing.dialect.name == "postgresql"
    guard = f"{FACTS}_no_update"
    definition = writing.scalar(text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = :name "
        "AND tgrelid = 'store_facts'::regclass" if postgresql else
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = :name"),
        {"name": guard})
    if definition is None:  # no guard: verify reports that; a copy must not mask it
        raise CopyRefused(f"The target {location} lacks its append-only guard {guard}; "
                          "nothing was copied. Copy into a new, empty database.")
    writing.execute(text(f"DROP TRIGGER {guard}" + (f" ON {FACTS}" if postgresql else "")))
    writing.execute(text(f"UPDATE {FACTS} SET value = :value WHERE name = :name"),
                    changed[0])
    writing.execute(text(definition))
    return True


def _advance_sequences(writing: Connection, tables: Sequence[Table]) -> None:
    """PostgreSQL: the copy inserted its own ids, which does not move the serial (or
    identity) sequences; set each past the largest id so the next insert does not collide.
    ``pg_get_serial_sequence`` names the sequence of both kinds (NULL for a key without one,
    e.g. audit_events, whose ids the store assigns); setval of NULL (an empty table) is a
    no-op."""
    for table in tables:
        key = _key(table)
        if not isinstance(key.type, Integer):
            continue
        writing.execute(text(
            f"SELECT setval(pg_get_serial_sequence(:table, :column), "
            f"(SELECT max({key.name}) FROM {table.name}))"),
            {"table": table.name, "column": key.name})


def _verify_target(writing: Connection, location: str,
                   progress: ProgressCallback | None) -> tuple[int, str] | None:
    """Verify the target inside the copy's transaction, as ``verify_chain`` does (chain,
    records, signatures, checkpoints, accounts, guards, the case list): a copy that would
    not verify is never committed. The session joins the open transaction (it neither
    commits nor ends it)."""
    with Session(bind=writing) as session:
        result = verify_history(session, progress)
        stray = case_list.first_disagreement(session) if result.ok else None
        if not result.ok or stray is not None:
            reason = result.reason if not result.ok else f"the case list row of case {stray}"
            raise CopyRefused(f"The copy in {location} does not verify ({reason}); it was "
                              "rolled back and the target is as it was. A source that "
                              "verifies copies whole into an empty target: check the "
                              "target with `casewise audit verify`, else report this.")
        return audit.head(session)
