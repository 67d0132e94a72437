"""The case list table: each case's latest prediction, escalation and review, indexed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Until now the case list found each case's latest records at query time; any filter, sort or
count then scanned every case (about a second at 100,000). ``case_latest`` keeps copies of
their key columns, one row per case, kept in step by the repository's writes; this revision
creates it and fills it from the records already stored (no audit events: it is derived,
not evidence). Frozen history: the DDL is written out here, not imported from the app.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FILTER_COLUMNS = ("label", "escalation", "review_decision", "reviewed", "reviewer_id",
                  "model_id")

BACKFILL = """
INSERT INTO case_latest (case_id, created, label, confidence, model_id, escalation,
                         review_id, review_decision, reviewer_id, reviewed)
SELECT c.id, c.created, p.label, p.confidence, p.model_id, e.decision,
       r.id, r.decision, r.reviewer_id,
       CASE WHEN r.decision IN ('accept', 'override') THEN TRUE ELSE FALSE END
FROM cases AS c
LEFT JOIN predictions AS p ON p.id = (SELECT max(id) FROM predictions WHERE case_id = c.id)
LEFT JOIN escalations AS e ON e.id = (SELECT max(id) FROM escalations WHERE case_id = c.id)
LEFT JOIN reviews AS r ON r.id = (SELECT max(id) FROM reviews WHERE case_id = c.id)
"""


def upgrade() -> None:
    op.create_table(
        "case_latest",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("confidence", sa.Float),
        sa.Column("model_id", sa.String(200)),
        sa.Column("escalation", sa.String(16)),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id")),
        sa.Column("review_decision", sa.String(16)),
        sa.Column("reviewer_id", sa.Integer, sa.ForeignKey("reviewers.id")),
        sa.Column("reviewed", sa.Boolean, nullable=False),
    )
    # Filled before the indexes exist: building an index once is cheaper than growing it.
    op.execute(BACKFILL)
    op.create_index("ix_case_latest_created", "case_latest", ["created"])
    for column in FILTER_COLUMNS:
        op.create_index(f"ix_case_latest_{column}_created", "case_latest", [column, "created"])
    op.create_index("ix_case_latest_confidence", "case_latest", ["confidence"])


def downgrade() -> None:
    op.drop_table("case_latest")  # its indexes go with it
