"""Engine state: contracts, targets, payments, requests, disputes, chargebacks, add-ons,
points, withdrawals, inbox and outbox.

Revision ID: policy0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "policy0001"
down_revision = None
branch_labels = ("policy",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "addons",
        sa.Column("addon_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("addon_id"),
    )
    op.create_table(
        "cashouts",
        sa.Column("cashout_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fraud_claim_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("cashout_id"),
    )
    op.create_table(
        "chargebacks",
        sa.Column("chargeback_id", sa.String(length=128), nullable=False),
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("issuer_fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("chargeback_id"),
    )
    op.create_index(op.f("ix_chargebacks_payment_id"), "chargebacks", ["payment_id"], unique=False)
    op.create_table(
        "contracts",
        sa.Column("contract_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("creator_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("policy", sa.String(length=32), nullable=False),
        sa.Column("client_jurisdiction", sa.String(length=2), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_total_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("refunded_total_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reviews_hidden", sa.Boolean(), server_default="0", nullable=False),
        sa.CheckConstraint("kind IN ('fixed', 'hourly')", name="contract_kind"),
        sa.CheckConstraint("refunded_total_minor <= paid_total_minor", name="refunds_within_paid"),
        sa.PrimaryKeyConstraint("contract_id"),
    )
    op.create_table(
        "disputes",
        sa.Column("dispute_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("refund_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("released_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("overdue_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("dispute_id"),
    )
    op.create_index("disputes_open_by_age", "disputes", ["status", "opened_at"], unique=False)
    op.create_index(op.f("ix_disputes_contract_id"), "disputes", ["contract_id"], unique=False)
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(op.f("ix_inbox_contract_id"), "inbox", ["contract_id"], unique=False)
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("notification_id", sa.String(length=400), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("notification_id"),
    )
    op.create_index(op.f("ix_outbox_contract_id"), "outbox", ["contract_id"], unique=False)
    op.create_index(
        "outbox_unsent",
        "outbox",
        ["seq"],
        unique=False,
        sqlite_where=sa.text("sent_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=True),
        sa.Column("payer_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("charge_total_minor", sa.BigInteger(), nullable=False),
        sa.Column("processor_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "processor_fee_refunded_minor", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.Column(
            "deducted_from_client_minor", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.Column("passed_through_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("payment_id"),
    )
    op.create_table(
        "point_awards",
        sa.Column("award_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("milestone_id", sa.String(length=128), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("clawed_back_points", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("awarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("award_id"),
    )
    op.create_index(
        op.f("ix_point_awards_milestone_id"), "point_awards", ["milestone_id"], unique=False
    )
    op.create_table(
        "refund_requests",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    op.create_index(
        op.f("ix_refund_requests_contract_id"), "refund_requests", ["contract_id"], unique=False
    )
    op.create_table(
        "targets",
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("contract_id", sa.String(length=128), nullable=False),
        sa.Column("payment_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("client_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("creator_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("processor_fee_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("work_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("client_fee_reversed_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "creator_fee_reversed_minor", sa.BigInteger(), server_default="0", nullable=False
        ),
        sa.Column("creator_fee_charged_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("clawed_back_minor", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frozen", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("final_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('milestone', 'invoice')", name="target_kind"),
        sa.CheckConstraint("amount_minor > 0", name="target_amount_positive"),
        sa.CheckConstraint("refunded_minor <= amount_minor", name="target_refund_within_amount"),
        sa.PrimaryKeyConstraint("target_id"),
    )
    op.create_index(op.f("ix_targets_contract_id"), "targets", ["contract_id"], unique=False)
    op.create_index(op.f("ix_targets_payment_id"), "targets", ["payment_id"], unique=False)
    op.create_table(
        "withdrawals",
        sa.Column("withdrawal_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("earliest_on", sa.Date(), nullable=False),
        sa.Column("latest_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("withdrawal_id"),
    )


def downgrade() -> None:

    op.drop_table("withdrawals")
    op.drop_index(op.f("ix_targets_payment_id"), table_name="targets")
    op.drop_index(op.f("ix_targets_contract_id"), table_name="targets")
    op.drop_table("targets")
    op.drop_index(op.f("ix_refund_requests_contract_id"), table_name="refund_requests")
    op.drop_table("refund_requests")
    op.drop_index(op.f("ix_point_awards_milestone_id"), table_name="point_awards")
    op.drop_table("point_awards")
    op.drop_table("payments")
    op.drop_index(
        "outbox_unsent",
        table_name="outbox",
        sqlite_where=sa.text("sent_at IS NULL"),
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.drop_index(op.f("ix_outbox_contract_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_inbox_contract_id"), table_name="inbox")
    op.drop_table("inbox")
    op.drop_index(op.f("ix_disputes_contract_id"), table_name="disputes")
    op.drop_index("disputes_open_by_age", table_name="disputes")
    op.drop_table("disputes")
    op.drop_table("contracts")
    op.drop_index(op.f("ix_chargebacks_payment_id"), table_name="chargebacks")
    op.drop_table("chargebacks")
    op.drop_table("cashouts")
    op.drop_table("addons")
