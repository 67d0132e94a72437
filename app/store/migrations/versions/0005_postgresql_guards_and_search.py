"""PostgreSQL: the append-only guards and full-text search that SQLite has had since 0001.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05

On SQLite nothing changes (its triggers and FTS5 index came with 0001 and 0004). On
PostgreSQL, a team's history gets:

- the same guards: ``<table>_no_update`` and ``<table>_no_delete`` row triggers on every
  append-only table (the names ``audit verify`` checks), plus ``<table>_no_truncate`` (TRUNCATE
  fires no row triggers); each raises "<table> is append-only: <ACTION> refused";
- full-text search as FTS5 reads text: ``cases.text_tsv``, a stored generated tsvector of the
  case text in which every run of non-alphanumeric characters separates words (FTS5's
  unicode61 tokenizer; PostgreSQL's own parser would keep "e-mail", "x@y.org" or "3.5" as
  single tokens), lower-cased and without diacritics (``unaccent``, when the server has it:
  it ships with PostgreSQL and is a trusted extension since 13), indexed with GIN.

Frozen history: the DDL is written out here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

APPEND_ONLY = ("reviewers", "cases", "predictions", "attributions", "escalations",
               "llm_opinions", "reviews", "audit_events", "users", "signing_keys",
               "signatures", "checkpoints", "store_facts")
GUARD_FUNCTION = """
CREATE FUNCTION casewise_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
END
$$
"""
SEARCH_CONFIG = "casewise_fts"
TSVECTOR = (f"to_tsvector('{SEARCH_CONFIG}'::regconfig, "
            "regexp_replace(text, '[^[:alnum:]]+', ' ', 'g'))")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(GUARD_FUNCTION)
    for table in APPEND_ONLY:
        for action in ("update", "delete"):
            op.execute(f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION casewise_append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION casewise_append_only()")
    _search()


def _search() -> None:
    bind = op.get_bind()
    op.execute(f"CREATE TEXT SEARCH CONFIGURATION {SEARCH_CONFIG} (COPY = simple)")
    if _unaccent_available(bind):
        op.execute(f"ALTER TEXT SEARCH CONFIGURATION {SEARCH_CONFIG} ALTER MAPPING FOR "
                   "asciiword, word, numword, asciihword, hword, numhword, hword_part, "
                   "hword_asciipart, hword_numpart WITH unaccent, simple")
    # Adding a stored generated column rewrites the table; it fires no row triggers.
    op.execute(f"ALTER TABLE cases ADD COLUMN text_tsv tsvector "
               f"GENERATED ALWAYS AS ({TSVECTOR}) STORED")
    op.execute("CREATE INDEX ix_cases_text_tsv ON cases USING gin (text_tsv)")


def _unaccent_available(bind: sa.Connection) -> bool:
    """Create ``unaccent`` if the server has it and we may (in a savepoint: a refusal must not
    abort the migration); without it, search still works but "café" does not find "cafe"."""
    if bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")
                    ).scalar() is None:
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    except sa.exc.DBAPIError:
        return False
    return True


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_cases_text_tsv")
    op.execute("ALTER TABLE cases DROP COLUMN text_tsv")
    op.execute(f"DROP TEXT SEARCH CONFIGURATION {SEARCH_CONFIG}")
    for table in APPEND_ONLY:
        for action in ("update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {table}_no_{action} ON {table}")
    op.execute("DROP FUNCTION casewise_append_only()")
