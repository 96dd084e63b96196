"""The deadline store: every time limit of the policies as a row that a tick fires once."""

from __future__ import annotations

from sqlalchemy import Column, Index, MetaData, String, Table

from store.columns import UtcDateTime

metadata = MetaData()

deadlines = Table(
    "deadlines",
    metadata,
    # `<kind>:<subject_id>`: scheduling the same deadline twice (a redelivered event) is a no-op.
    Column("deadline_id", String(300), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("subject_id", String(128), nullable=False),
    Column("contract_id", String(128), index=True),
    Column("due_at", UtcDateTime, nullable=False),
    Column("created_by_event", String(128), nullable=False),
    Column("fired_at", UtcDateTime),
    Column("fired_by_event", String(128)),
    Column("outcome", String(32)),
)
# Only unfired rows are ever claimed, so the partial index stays small however many have fired.
# Its columns are the claim's ORDER BY, so a claim reads the first `limit` entries and stops
# instead of sorting every due row (a tick after a long outage may find millions).
Index(
    "deadlines_due",
    deadlines.c.due_at,
    deadlines.c.deadline_id,
    postgresql_where=deadlines.c.fired_at.is_(None),
    sqlite_where=deadlines.c.fired_at.is_(None),
)
