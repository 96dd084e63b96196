"""Deadline store.

Revision ID: sched0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "sched0001"
down_revision = None
branch_labels = ("scheduler",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("deadline_id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_event", sa.String(length=128), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fired_by_event", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("deadline_id"),
    )
    op.create_index(
        "deadlines_due",
        "deadlines",
        ["due_at", "deadline_id"],
        unique=False,
        postgresql_where=sa.text("fired_at IS NULL"),
        sqlite_where=sa.text("fired_at IS NULL"),
    )
    op.create_index(op.f("ix_deadlines_contract_id"), "deadlines", ["contract_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_deadlines_contract_id"), table_name="deadlines")
    op.drop_index(
        "deadlines_due",
        table_name="deadlines",
        postgresql_where=sa.text("fired_at IS NULL"),
        sqlite_where=sa.text("fired_at IS NULL"),
    )
    op.drop_table("deadlines")
