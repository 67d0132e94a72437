"""Initial schema: models, reviewers, cases (+ FTS5), the append-only records and the audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Migrations are frozen history: write the DDL here, never import the app's current schema.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("reviewers", "cases", "predictions", "attributions", "escalations",
               "llm_opinions", "reviews", "audit_events")


def _id(autoincrement: bool = True) -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=autoincrement)


def _created(name: str = "created") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _case_fk() -> sa.Column:
    return sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False)


def _prediction_fk() -> sa.Column:
    return sa.Column("prediction_id", sa.Integer, sa.ForeignKey("predictions.id"))


def _data() -> sa.Column:
    return sa.Column("data", sa.Text, nullable=False)


def upgrade() -> None:
    autoinc = {"sqlite_autoincrement": True}  # ids are cited by audit events: never reuse one
    op.create_table(
        "models",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("weights_sha256", sa.String(64)),
        sa.Column("card", sa.Text, nullable=False),
        _created(),
    )
    op.create_table(
        "reviewers", _id(),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        _created(), **autoinc,
    )
    op.create_table(
        "cases", _id(), _created(),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("metadata", sa.Text, nullable=False), **autoinc,
    )
    op.create_index("ix_cases_created", "cases", ["created"])
    op.create_table(
        "predictions", _id(), _case_fk(), _created(),
        sa.Column("model_id", sa.String(200), sa.ForeignKey("models.id"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("confidence", sa.Float),
        _data(), **autoinc,
    )
    # No index on label or model_id on purpose: the case list filters on the *latest*
    # prediction, and such an index tempts SQLite into a plan that rescans cases per row.
    op.create_index("ix_predictions_case_id_id", "predictions", ["case_id", "id"])
    op.create_table(
        "attributions", _id(), _case_fk(), _prediction_fk(), _created(),
        sa.Column("label", sa.String(200)),
        sa.Column("method", sa.String(100)),
        _data(), **autoinc,
    )
    op.create_index("ix_attributions_case_id_id", "attributions", ["case_id", "id"])
    op.create_table(
        "escalations", _id(), _case_fk(), _prediction_fk(), _created(),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("policy_id", sa.String(200)),
        _data(),
        sa.CheckConstraint("decision IN ('auto', 'escalate')", name="decision"), **autoinc,
    )
    op.create_index("ix_escalations_case_id_id", "escalations", ["case_id", "id"])
    op.create_table(
        "llm_opinions", _id(), _case_fk(), _created(),
        sa.Column("backend", sa.String(100), nullable=False),
        sa.Column("model", sa.String(300), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("sent_sha256", sa.String(64)),
        _data(), **autoinc,
    )
    op.create_index("ix_llm_opinions_case_id_id", "llm_opinions", ["case_id", "id"])
    op.create_table(
        "reviews", _id(), _case_fk(),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id"), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("meaning", sa.String(16), nullable=False),
        _created("signed_at"),
        sa.Column("case_sha256", sa.String(64), nullable=False),
        _prediction_fk(),
        sa.Column("supersedes_id", sa.Integer, sa.ForeignKey("reviews.id")),
        sa.CheckConstraint("decision IN ('accept', 'override', 'defer')", name="decision"),
        sa.CheckConstraint("meaning IN ('reviewed', 'approved')", name="meaning"),
        sa.CheckConstraint("decision <> 'override' OR (label IS NOT NULL AND reason IS NOT NULL "
                           "AND length(trim(reason)) > 0)", name="override_explained"),
        **autoinc,
    )
    op.create_index("ix_reviews_case_id_id", "reviews", ["case_id", "id"])
    op.create_table(
        "audit_events", _id(autoincrement=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id")),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_guards()
        _sqlite_fts()


def _sqlite_guards() -> None:
    """Append-only, enforced by the database: the app never updates or deletes these rows, so
    any UPDATE or DELETE is someone working behind its back."""
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END")


def _sqlite_fts() -> None:
    """Full-text search over case text: an external-content FTS5 index (the text is stored
    once, in cases) kept in step by triggers, so no code path can forget to index a case."""
    op.execute("CREATE VIRTUAL TABLE cases_fts USING fts5(text, content='cases', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    op.execute("CREATE TRIGGER cases_fts_insert AFTER INSERT ON cases BEGIN "
               "INSERT INTO cases_fts(rowid, text) VALUES (new.id, new.text); END")
    op.execute("CREATE TRIGGER cases_fts_delete AFTER DELETE ON cases BEGIN "
               "INSERT INTO cases_fts(cases_fts, rowid, text) VALUES ('delete', old.id, old.text);"
               " END")
    op.execute("CREATE TRIGGER cases_fts_update AFTER UPDATE OF text ON cases BEGIN "
               "INSERT INTO cases_fts(cases_fts, rowid, text) VALUES ('delete', old.id, old.text);"
               " INSERT INTO cases_fts(rowid, text) VALUES (new.id, new.text); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE cases_fts")
    for table in ("audit_events", "reviews", "llm_opinions", "escalations", "attributions",
                  "predictions", "cases", "reviewers", "models"):
        op.drop_table(table)  # dropping a table drops its triggers and indexes
