"""The deadline store: write a deadline with the event that starts it, claim the due ones.

A deadline's id is `<kind>:<subject_id>`, so scheduling it again (a redelivered event) changes
nothing. Claiming takes the oldest due rows first and, on PostgreSQL, skips rows another tick
holds (`FOR UPDATE SKIP LOCKED`), so two ticks never fire the same deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from scheduler.tables import deadlines


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: str
    subject_id: str
    due_at: datetime
    contract_id: str | None
    created_by_event: str

    @property
    def deadline_id(self) -> str:
        return deadline_id(self.kind, self.subject_id)


@dataclass(frozen=True, slots=True)
class DueDeadline:
    deadline_id: str
    kind: str
    subject_id: str
    contract_id: str | None
    due_at: datetime


def deadline_id(kind: str, subject_id: str) -> str:
    return f"{kind}:{subject_id}"


def schedule_deadline(conn: Connection, deadline: Deadline) -> bool:
    """Store `deadline` unless it is already stored; True when this call stored it.

    An existing unfired deadline of the same id is moved to the new due time (a window that
    moved, e.g. a contract closed later than a release plus 30 days).
    """
    existing = conn.execute(
        select(deadlines.c.fired_at).where(deadlines.c.deadline_id == deadline.deadline_id)
    ).first()
    if existing is not None:
        if existing.fired_at is None:
            conn.execute(
                update(deadlines)
                .where(deadlines.c.deadline_id == deadline.deadline_id)
                .values(due_at=deadline.due_at)
            )
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                deadlines.insert().values(
                    deadline_id=deadline.deadline_id,
                    kind=deadline.kind,
                    subject_id=deadline.subject_id,
                    contract_id=deadline.contract_id,
                    due_at=deadline.due_at,
                    created_by_event=deadline.created_by_event,
                )
            )
    except IntegrityError:
        return False
    return True


def claim_due(conn: Connection, tick_at: datetime, *, limit: int = 1000) -> list[DueDeadline]:
    """Lock and return up to `limit` unfired deadlines with `due_at <= tick_at`, oldest first."""
    query = (
        select(
            deadlines.c.deadline_id,
            deadlines.c.kind,
            deadlines.c.subject_id,
            deadlines.c.contract_id,
            deadlines.c.due_at,
        )
        .where(deadlines.c.fired_at.is_(None), deadlines.c.due_at <= tick_at)
        .order_by(deadlines.c.due_at, deadlines.c.deadline_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [DueDeadline(**row) for row in conn.execute(query).mappings()]


def mark_fired(
    conn: Connection, deadline_id_: str, *, at: datetime, event_id: str, outcome: str
) -> None:
    conn.execute(
        update(deadlines)
        .where(deadlines.c.deadline_id == deadline_id_)
        .values(fired_at=at, fired_by_event=event_id, outcome=outcome)
    )


def cancel(conn: Connection, kind: str, subject_id: str, *, at: datetime, event_id: str) -> None:
    """Retire an unfired deadline whose cause went away; it will never fire."""
    conn.execute(
        update(deadlines)
        .where(
            deadlines.c.deadline_id == deadline_id(kind, subject_id),
            deadlines.c.fired_at.is_(None),
        )
        .values(fired_at=at, fired_by_event=event_id, outcome="cancelled")
    )
