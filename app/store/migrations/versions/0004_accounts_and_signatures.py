"""Accounts, signing keys, signatures and signed checkpoints of the chain.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04

Reviews stored before this revision were signed by a typed name only; they stay as they
are and show as "unsigned (recorded before accounts)". The id of the last of them is kept in
``store_facts``, so a later review without a signature is named by ``audit verify`` rather
than mistaken for an old one. Frozen history: the DDL is written out here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

APPEND_ONLY = ("users", "signing_keys", "signatures", "checkpoints", "store_facts")


def _created(name: str = "created") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    autoinc = {"sqlite_autoincrement": True}
    op.create_table(
        "users", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("full_name", sa.String(200), nullable=False), _created(), **autoinc)
    op.create_table(
        "user_state",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False), _created("updated"))
    op.create_table(
        "signing_keys", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False, unique=True),
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        _created(), **autoinc)
    op.create_index("ix_signing_keys_user_id", "signing_keys", ["user_id"])
    op.create_table(
        "key_secrets",
        sa.Column("key_id", sa.Integer, sa.ForeignKey("signing_keys.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("sealed", sa.Text, nullable=False))
    op.create_table(
        "signatures", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id"), nullable=False,
                  unique=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("signing_keys.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("case_sha256", sa.String(64), nullable=False),
        sa.Column("head_id", sa.Integer, nullable=False),
        sa.Column("head_hash", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False), **autoinc)
    op.create_table(
        "checkpoints", sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Integer, nullable=False),
        sa.Column("event_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("signing_keys.id"), nullable=False),
        sa.Column("signed_at", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False), **autoinc)
    op.create_table(
        "store_facts", sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False))
    op.execute("INSERT INTO store_facts (name, value) SELECT 'accounts_from_review_id', "
               "CAST(coalesce(max(id), 0) AS TEXT) FROM reviews")
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); "
                    "END")


def downgrade() -> None:
    for table in ("store_facts", "checkpoints", "signatures", "key_secrets", "signing_keys",
                  "user_state", "users"):
        op.drop_table(table)
