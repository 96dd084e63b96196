"""The ordered intake: event log, parked keys, applied steps, dead letters.

Revision ID: intake0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "intake0001"
down_revision = None
branch_labels = ("intake",)
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PENDING = sa.text("status = 'pending'")
PENDING_TICKS = sa.text("status = 'pending' AND kind = 'tick'")


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("seq", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("ordering_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("producer", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
    )
    op.create_index(
        "event_log_pending",
        "event_log",
        ["partition", "seq"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "event_log_pending_ticks",
        "event_log",
        ["seq"],
        postgresql_where=PENDING_TICKS,
        sqlite_where=PENDING_TICKS,
    )
    op.create_table(
        "parked_keys",
        sa.Column("ordering_key", sa.String(length=128), primary_key=True),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retry_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=2000), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
    )
    op.create_index(op.f("ix_parked_keys_partition"), "parked_keys", ["partition"])
    op.create_table(
        "owed_ticks",
        sa.Column("ordering_key", sa.String(length=128), primary_key=True),
        sa.Column("tick_seq", sa.BigInteger(), primary_key=True),
        sa.Column("partition", sa.SmallInteger(), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(op.f("ix_owed_ticks_partition"), "owed_ticks", ["partition"])
    op.create_table(
        "applied_steps",
        sa.Column("step", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("log_seq", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("contract_ids", sa.Text(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("dead_letter_id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("log_seq", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("problems", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("routing_key", sa.String(length=256), nullable=True),
        sa.Column("producer", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_bytes", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
    op.drop_table("applied_steps")
    op.drop_index(op.f("ix_owed_ticks_partition"), table_name="owed_ticks")
    op.drop_table("owed_ticks")
    op.drop_index(op.f("ix_parked_keys_partition"), table_name="parked_keys")
    op.drop_table("parked_keys")
    op.drop_index("event_log_pending_ticks", table_name="event_log")
    op.drop_index("event_log_pending", table_name="event_log")
    op.drop_table("event_log")
