"""The engine's state: contracts and what hangs off them, the inbox and the outbox.

SQLAlchemy Core tables on their own `metadata` (the ledger and the scheduler keep theirs).
Every money column is a BIGINT of minor units (a contract's two running totals excepted:
`RunningSum`); every time is aware UTC. A milestone and an invoice share one table, `targets`,
because a refund, a dispute and the SC-6 fee reversal treat them alike; `kind` tells them
apart.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from store.columns import RunningSum, SerializedJson, UtcDateTime

metadata = MetaData()

ID = 128  # event ids and every upstream id fit in 128 characters (MESSAGES.md)


def _money(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, server_default="0")


def _running_sum(name: str) -> Column[int]:
    return Column(name, RunningSum(), nullable=False, server_default="0")


contracts = Table(
    "contracts",
    metadata,
    Column("contract_id", String(ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("client_id", String(ID), nullable=False),
    Column("creator_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("policy", String(32), nullable=False),
    Column("client_jurisdiction", String(2)),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    # Running sums over a contract's every payment and refund, unbounded in number: exact
    # NUMERIC on PostgreSQL (`RunningSum`, policy0002). Every other money column is one
    # amount or a sum bounded by one target's or payment's amount.
    _running_sum("paid_total_minor"),
    _running_sum("refunded_total_minor"),
    Column("reviews_hidden", Boolean, nullable=False, server_default="0"),
    CheckConstraint("kind IN ('fixed', 'hourly')", name="contract_kind"),
    CheckConstraint("refunded_total_minor <= paid_total_minor", name="refunds_within_paid"),
)

targets = Table(
    "targets",
    metadata,
    Column("target_id", String(ID), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("contract_id", String(ID), nullable=False, index=True),
    Column("payment_id", String(ID), nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    _money("client_fee_minor"),
    _money("creator_fee_minor"),
    _money("processor_fee_minor"),
    Column("paid_at", UtcDateTime, nullable=False),
    Column("period_start", Date),
    Column("work_started_at", UtcDateTime),
    Column("released_at", UtcDateTime),
    _money("released_minor"),
    _money("refunded_minor"),
    _money("client_fee_reversed_minor"),
    _money("creator_fee_reversed_minor"),
    _money("creator_fee_charged_minor"),
    _money("clawed_back_minor"),
    Column("status", String(16), nullable=False),
    Column("frozen", Boolean, nullable=False, server_default="0"),
    Column("final_at", UtcDateTime),
    CheckConstraint("kind IN ('milestone', 'invoice')", name="target_kind"),
    CheckConstraint("amount_minor > 0", name="target_amount_positive"),
    CheckConstraint("refunded_minor <= amount_minor", name="target_refund_within_amount"),
)

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(ID), primary_key=True),
    Column("contract_id", String(ID)),
    Column("payer_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("charge_total_minor", BigInteger, nullable=False),
    _money("processor_fee_minor"),
    _money("processor_fee_refunded_minor"),
    _money("deducted_from_client_minor"),
    _money("passed_through_minor"),
    Column("paid_at", UtcDateTime, nullable=False),
)

refund_requests = Table(
    "refund_requests",
    metadata,
    Column("request_id", String(ID), primary_key=True),
    Column("contract_id", String(ID), nullable=False, index=True),
    Column("target_id", String(ID), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("decided_at", UtcDateTime),
    Column("decided_by", String(ID)),
)

disputes = Table(
    "disputes",
    metadata,
    Column("dispute_id", String(ID), primary_key=True),
    Column("contract_id", String(ID), nullable=False, index=True),
    Column("target_id", String(ID), nullable=False),
    Column("reason", Text, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("resolved_at", UtcDateTime),
    Column("outcome", String(32)),
    _money("refund_minor"),
    _money("released_minor"),
    Column("overdue_notified_at", UtcDateTime),
    Column("decided_by", String(ID)),
)
# The dispute queue's keyset pages, one status or all (policy0004).
Index("disputes_queue", disputes.c.status, disputes.c.opened_at, disputes.c.dispute_id)
Index("disputes_by_age", disputes.c.opened_at, disputes.c.dispute_id)

dispute_evidence = Table(
    "dispute_evidence",
    metadata,
    Column("evidence_id", String(ID), primary_key=True),
    Column("dispute_id", String(ID), nullable=False, index=True),
    Column("contract_id", String(ID), nullable=False),
    Column("party", String(16), nullable=False),
    Column("text", Text, nullable=False),
    # What the event said of each file (name, media type, size, digest, URL), as it said it.
    Column("attachments", JSON, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("event_id", String(ID), nullable=False),
)

chargebacks = Table(
    "chargebacks",
    metadata,
    Column("chargeback_id", String(ID), primary_key=True),
    Column("payment_id", String(ID), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("issuer_fee_minor", BigInteger, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("resolved_at", UtcDateTime),
)

addons = Table(
    "addons",
    metadata,
    Column("addon_id", String(ID), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payment_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("purchased_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("refunded_at", UtcDateTime),
)

point_awards = Table(
    "point_awards",
    metadata,
    Column("award_id", String(ID), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("milestone_id", String(ID), index=True),
    Column("points", BigInteger, nullable=False),
    _money("clawed_back_points"),
    Column("awarded_at", UtcDateTime, nullable=False),
)

cashouts = Table(
    "cashouts",
    metadata,
    Column("cashout_id", String(ID), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("paid_at", UtcDateTime, nullable=False),
    Column("reversed_at", UtcDateTime),
    Column("fraud_claim_id", String(ID)),
)

withdrawals = Table(
    "withdrawals",
    metadata,
    Column("withdrawal_id", String(ID), primary_key=True),
    Column("user_id", String(ID), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("requested_at", UtcDateTime, nullable=False),
    Column("earliest_on", Date, nullable=False),
    Column("latest_on", Date, nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("event_id", String(ID), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    # Stored as the canonical text the digest is computed from (`policy.apply`).
    Column("body", SerializedJson, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("contract_id", String(ID), index=True),
    Column("result", String(16), nullable=False),
    Column("reason", String(32)),
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("notification_id", String(400), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("body", Text, nullable=False),
    Column("event_id", String(ID), nullable=False),
    Column("contract_id", String(ID), index=True),
    Column("sent_at", UtcDateTime),
)
Index(
    "outbox_unsent",
    outbox.c.seq,
    sqlite_where=outbox.c.sent_at.is_(None),
    postgresql_where=outbox.c.sent_at.is_(None),
)
