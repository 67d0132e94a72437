"""Raw SQL on a case history behind the app's back, as someone with a database shell would do
it: on an SQLite file (``sqlite3``'s shell) or a PostgreSQL database (``psql``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def url_of(location: str | Path) -> str:
    return location if isinstance(location, str) and "://" in location \
        else f"sqlite:///{Path(location)}"


def dialect_of(location: str | Path) -> str:
    return make_url(url_of(location)).get_backend_name()


def raw_sql(location: str | Path, *statements: str, params: dict | None = None) -> list:
    """Run each statement in autocommit (``:name`` marks take ``params``); the rows of the
    last one that returns rows."""
    engine = create_engine(url_of(location), isolation_level="AUTOCOMMIT")
    rows: list = []
    try:
        with engine.connect() as connection:
            for statement in statements:
                result = connection.execute(text(statement), params or {})
                if result.returns_rows:
                    rows = result.all()
    finally:
        engine.dispose()
    return rows


def drop_guard(location: str | Path, table: str, action: str) -> str:
    """The statement that removes one of the append-only triggers ("update", "delete")."""
    name = f"{table}_no_{action}"
    return f"DROP TRIGGER {name} ON {table}" if dialect_of(location) == "postgresql" \
        else f"DROP TRIGGER {name}"


def trigger_names(location: str | Path) -> set[str]:
    query = ("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
             if dialect_of(location) == "postgresql"
             else "SELECT name FROM sqlite_master WHERE type = 'trigger'")
    return {row[0] for row in raw_sql(location, query)}


def everything_stored(location: str | Path) -> bytes:
    """All a database holds, to search for what must not be there: an SQLite file's bytes
    (with its -wal), or every row of every table of a PostgreSQL database as text."""
    if dialect_of(location) != "postgresql":
        path = Path(location)
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    tables = [row[0] for row in raw_sql(
        location, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    parts = [raw_sql(location, f"SELECT coalesce(string_agg(t::text, ' '), '') FROM {name} t")
             [0][0] for name in tables]
    return "\n".join(parts).encode("utf-8")
