"""The SQLAlchemy engine, with SQLite set up the same way on every connection.

SQLite is configured per connection, not per file, so an event listener does it each time the
pool opens one: WAL (readers never block the writer), foreign keys ON (off by default in
SQLite), a busy timeout (wait for another writer instead of failing at once), and
synchronous=NORMAL (safe with WAL: a power cut may lose the last commits, never corrupts).

Transactions: pysqlite's own BEGIN handling is switched off and we emit BEGIN ourselves, so
DDL is transactional (a migration commits or rolls back whole) and writers can ask for
BEGIN IMMEDIATE: they take the write lock at the start, so two writers queue on the busy
timeout instead of one failing half-way (the audit chain reads its last link, then appends).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

DEFAULT_BUSY_TIMEOUT = 5.0  # seconds
BEGIN_OPTION = "casewise_sqlite_begin"


def make_engine(url: str | URL, busy_timeout: float = DEFAULT_BUSY_TIMEOUT, *,
                read_only: bool = False) -> Engine:
    url = make_url(url)
    engine = create_engine(url)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, busy_timeout, read_only)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (and pool) whose transactions start with BEGIN IMMEDIATE on SQLite."""
    return engine.execution_options(**{BEGIN_OPTION: "IMMEDIATE"})


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
