"""The SQLAlchemy engine, with SQLite (or PostgreSQL) set up the same way on every connection.

SQLite is configured per connection, not per file, so an event listener does it each time the
pool opens one: WAL (readers never block the writer), foreign keys ON (off by default in
SQLite), a busy timeout (wait for another writer instead of failing at once), and
synchronous=NORMAL (safe with WAL: a power cut may lose the last commits, never corrupts).

Transactions: pysqlite's own BEGIN handling is switched off and we emit BEGIN ourselves, so
DDL is transactional (a migration commits or rolls back whole) and writers can ask for
BEGIN IMMEDIATE: they take the write lock at the start, so two writers queue on the busy
timeout instead of one failing half-way (the audit chain reads its last link, then appends).

PostgreSQL (a team's shared history): a writer's transaction takes a transaction-scoped
advisory lock as its first statement, so writers are serialised exactly as BEGIN IMMEDIATE
serialises them on SQLite — the chain head a writer reads is the last committed link, the
batch's "look up, then insert" cannot race, and ids are logged in the order they were taken.
An advisory lock, not a row lock on the head: the head is "the row with the highest id", so a
writer waiting on it would get the old head back once the holder commits (a fork), an empty
chain has no row to lock, and the lock must also cover the case lookups before the append. It
is released at commit, rollback, or when the connection dies. Waiting for it is bounded by
``lock_timeout`` (the busy timeout), which ends in StoreLocked as on SQLite. Writers read
committed data (they must see the newest link); readers get one snapshot per transaction
(REPEATABLE READ), so a walk of the chain never sees a record without its event.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

DEFAULT_BUSY_TIMEOUT = 5.0  # seconds
BEGIN_OPTION = "casewise_sqlite_begin"
# PostgreSQL: the advisory lock key of the history's writers (a fixed 64-bit number: the first
# 8 bytes of sha256("casewise.audit_chain"), signed). Advisory locks are per database.
WRITER_LOCK_KEY = int.from_bytes(hashlib.sha256(b"casewise.audit_chain").digest()[:8], "big",
                                 signed=True)
# A statement that runs longer than this is cancelled (StoreTimeout), unless the server, the
# role or the URL (``?options=-c statement_timeout=...``) already sets a limit.
STATEMENT_TIMEOUT = 300.0  # seconds
CONNECT_TIMEOUT = 10  # seconds, unless the URL says (``?connect_timeout=...``)


def make_engine(url: str | URL, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, *,
                read_only: bool = False) -> Engine:
    url = make_url(url)
    if url.get_backend_name() == "postgresql":
        return _postgresql_engine(url, busy_timeout)
    engine = create_engine(url)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, busy_timeout, read_only)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions start with BEGIN IMMEDIATE on SQLite, and
    with the writers' advisory lock (reading committed data) on PostgreSQL."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"},
                                        isolation_level="READ COMMITTED")
    return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})


def _postgresql_engine(url: URL, busy_timeout: float) -> Engine:
    connect_args: dict[str, Any] = {"application_name": "casewise"}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT
    # pre-ping: a connection the server dropped (a restart, an idle timeout) is replaced
    # before use instead of failing the next write.
    engine = create_engine(url, pool_pre_ping=True, isolation_level="REPEATABLE READ",
                           connect_args=connect_args)
    milliseconds = max(1, round(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {milliseconds}")
            cursor.execute("SHOW statement_timeout")
            if cursor.fetchone()[0] in ("0", "0ms"):
                cursor.execute(f"SET statement_timeout = {round(STATEMENT_TIMEOUT * 1000)}")
        dbapi_connection.commit()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(BEGIN_OPTION) == "IMMEDIATE":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITER_LOCK_KEY})")

    return engine


def _configure_sqlite(engine: Engine, busy_timeout: float, read_only: bool = False) -> None:
    milliseconds = max(0, round(busy_timeout * 1000))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN (see the module docstring)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {milliseconds}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not read_only:  # a read-only file keeps the journal mode it has
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")
