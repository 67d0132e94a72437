"""Index audit events by case and by kind.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

A case's history (``CaseRepository.audit_events(case_id=...)``, the case page, its PDF) and
the per-kind walks of ``verify_chain`` read events by case and by kind; without these indexes
both scan the whole chain, which grows by about five events per case.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_case_id", "audit_events", ["case_id"])
    op.create_index("ix_audit_events_kind", "audit_events", ["kind"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_kind", "audit_events")
    op.drop_index("ix_audit_events_case_id", "audit_events")
