"""Dispute evidence, and who decided a refund request or a dispute.

Revision ID: policy0002
Revises: policy0001
"""

import sqlalchemy as sa
from alembic import op

revision = "policy0002"
down_revision = "policy0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refund_requests", sa.Column("decided_by", sa.String(length=128), nullable=True))
    op.add_column("disputes", sa.Column("decided_by", sa.String(length=128), nullable=True))
    op.create_table(
        "dispute_evidence",
        sa.Column("evidence_id", sa.String(length=128), nullable=False),
        sa.Column("dispute_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=False),
        sa.Column("party", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("evidence_id"),
    )
    op.create_index(
        op.f("ix_dispute_evidence_dispute_id"), "dispute_evidence", ["dispute_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dispute_evidence_dispute_id"), table_name="dispute_evidence")
    op.drop_table("dispute_evidence")
    # SQLite alters a table by copying it: batch mode does that there and ALTER elsewhere.
    with op.batch_alter_table("disputes") as batch:
        batch.drop_column("decided_by")
    with op.batch_alter_table("refund_requests") as batch:
        batch.drop_column("decided_by")
