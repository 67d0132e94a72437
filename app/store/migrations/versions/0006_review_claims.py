"""Review claims: a team's review queue hands each case to one reviewer at a time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05

A claim (case, who, until when) is written when the queue offers a case, renewed while the
reviewer works on it, and deleted when the review is signed; an expired claim is taken over.
It is coordination, not evidence: not append-only, not hashed. Frozen history: the DDL is
written out here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_claims",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("claimed_by", sa.String(200), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False))
    op.create_index("ix_review_claims_expires", "review_claims", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_review_claims_expires", "review_claims")
    op.drop_table("review_claims")
