"""The intake's tables: the event log, parked keys, applied steps and dead letters."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

from store.columns import UtcDateTime

metadata = MetaData()

# SQLite makes only an INTEGER PRIMARY KEY an alias of its row id, which numbers rows itself.
_SERIAL = BigInteger().with_variant(Integer, "sqlite")

event_log = Table(
    "event_log",
    metadata,
    # The order the intake received the message in: the order events of one key are applied.
    Column("seq", _SERIAL, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),  # `event` or `tick`
    Column("ordering_key", String(128), nullable=False),
    Column("partition", SmallInteger, nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("producer", String(128), nullable=False),
    Column("body", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("status", String(8), nullable=False),  # `pending`, `done` or `dead`
    Column("result", String(16)),  # applied, rejected or duplicate (a tick: applied)
    Column("reason", String(32)),
)
# Only pending rows are ever looked for, so the partial indexes stay small however long the log.
Index(
    "event_log_pending",
    event_log.c.partition,
    event_log.c.seq,
    postgresql_where=event_log.c.status == "pending",
    sqlite_where=event_log.c.status == "pending",
)
Index(
    "event_log_pending_ticks",
    event_log.c.seq,
    postgresql_where=(event_log.c.status == "pending") & (event_log.c.kind == "tick"),
    sqlite_where=(event_log.c.status == "pending") & (event_log.c.kind == "tick"),
)

parked_keys = Table(
    "parked_keys",
    metadata,
    # A key whose first pending event cannot be applied yet; its later events wait behind it.
    Column("ordering_key", String(128), primary_key=True),
    Column("partition", SmallInteger, nullable=False, index=True),
    Column("head_seq", BigInteger, nullable=False),
    Column("reason", String(32), nullable=False),  # unknown_subject or handler_error
    Column("attempts", Integer, nullable=False),
    Column("first_failed_at", UtcDateTime, nullable=False),
    Column("retry_at", UtcDateTime, nullable=False),
    Column("last_error", String(2000), nullable=False),
    # The key itself when it is a contract's: the contract whose deadlines a tick leaves to it.
    Column("contract_id", String(128)),
)

owed_ticks = Table(
    "owed_ticks",
    metadata,
    # A tick fired while this contract's key was parked left the contract's deadlines out; they
    # fire when the key's events before the tick are done, before any of its events after it.
    Column("ordering_key", String(128), primary_key=True),
    Column("tick_seq", BigInteger, primary_key=True),
    Column("partition", SmallInteger, nullable=False, index=True),
    Column("fire_at", UtcDateTime, nullable=False),
)

applied_steps = Table(
    "applied_steps",
    metadata,
    # The order in which steps took effect, numbered inside each step's own transaction after
    # its row locks were taken, so two steps that touch one row are numbered in the order they
    # wrote it.
    Column("step", _SERIAL, primary_key=True, autoincrement=True),
    Column("log_seq", BigInteger, nullable=False),
    # `event`: the event at log_seq; `tick`: the tick at log_seq, less the contracts in
    # `contract_ids`; `key_deadlines`: the deadlines of contract `contract_ids` due at the time
    # of the tick at log_seq, fired late because the key was parked when that tick fired.
    Column("action", String(16), nullable=False),
    Column("contract_ids", Text, nullable=False),  # JSON list
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("dead_letter_id", _SERIAL, primary_key=True, autoincrement=True),
    Column("log_seq", BigInteger),  # set when the event had reached the log
    Column("reason", String(32), nullable=False),
    Column("problems", Text, nullable=False),  # JSON list of [field, problem]
    Column("event_id", String(128)),
    Column("event_type", String(64)),
    Column("routing_key", String(256)),
    Column("producer", String(128)),
    Column("body", Text, nullable=False),  # at most BODY_KEPT characters
    Column("body_bytes", Integer, nullable=False),  # the size of the body as received
    Column("received_at", UtcDateTime, nullable=False),
    Column("dead_at", UtcDateTime, nullable=False),
)
