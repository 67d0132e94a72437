"""Alembic environment for the case history, run by ``app.store.migrate`` (no alembic.ini).

The caller passes an open connection, already inside a transaction, in
``config.attributes["connection"]``: the whole upgrade then commits or rolls back as one, so
a process killed half-way through leaves the database at its old revision. Without one (a
developer running Alembic by hand), ``sqlalchemy.url`` from the config is used.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from app.store.engine import make_engine, writer
from app.store.schema import Base

# Importing this file outside a migration run (the Qt-free import test does) must do nothing.
config = getattr(context, "config", None)


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with writer(engine).begin() as own_connection:
            _run(own_connection)
    finally:
        engine.dispose()


def _run(connection: Connection) -> None:
    # target_metadata also lends its naming convention to op.create_table in the scripts,
    # so constraints get the same names as in app.store.schema.
    context.configure(connection=connection, target_metadata=Base.metadata,
                      transactional_ddl=True, include_name=_include_name)
    with context.begin_transaction():
        context.run_migrations()


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Search is made by raw SQL, not by the ORM schema: SQLite's FTS5 table (and its shadow
    # tables), PostgreSQL's tsvector column and its index (revision 0005).
    if type_ == "table" and name is not None and name.startswith("cases_fts"):
        return False
    return not (type_ in ("column", "index") and name in ("text_tsv", "ix_cases_text_tsv"))


if config is not None:
    run_migrations()
