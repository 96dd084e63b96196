"""The deadline store: write a deadline with the event that starts it, claim the due ones.

A deadline's id is `<kind>:<subject_id>`: one deadline per kind and subject, so scheduling it
again moves it rather than adding a second one. Claiming takes the oldest due rows first and,
on PostgreSQL, skips rows another tick holds (`FOR UPDATE SKIP LOCKED`), so two ticks never
fire the same deadline.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Connection, Select, bindparam, select, update

from scheduler.tables import deadlines
from store.prepared import InsertIfMissing, Prepared

FIRED = "fired"
CANCELLED = "cancelled"

ScheduleResult = Literal["stored", "moved", "unchanged", "rearmed", "already_fired"]


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


@dataclass(frozen=True, slots=True)
class StoredDeadline:
    """A deadline as stored: `fired_at` is None while it waits for a tick."""

    deadline_id: str
    kind: str
    subject_id: str
    contract_id: str | None
    due_at: datetime
    created_by_event: str
    fired_at: datetime | None
    fired_by_event: str | None
    outcome: str | None


def deadline_id(kind: str, subject_id: str) -> str:
    return f"{kind}:{subject_id}"


def schedule_deadline(conn: Connection, deadline: Deadline) -> ScheduleResult:
    """Make `deadline` wait for a tick at its `due_at`, and say what that took.

    - not stored yet: stored;
    - stored and waiting: moved to the new due time (a window that moved, e.g. a contract
      that closed later than a release plus 30 days), or unchanged when the time is the same;
    - cancelled: re-armed, since a new cause asks for it again;
    - fired: left alone, because a deadline fires once (a window cannot close twice).
    """
    columns = _columns(deadline)
    # Most deadlines are new: the insert is then all it takes. One stored already (or by
    # another transaction while this insert waited on its key) inserts nothing and is read,
    # locked, below.
    if _STORE.run(conn, columns):
        return "stored"
    existing = _EXISTING.first(conn, {"id": deadline.deadline_id})
    if existing is None:
        raise RuntimeError(f"deadline {deadline.deadline_id!r} neither stored nor found")
    due_at, fired_at, outcome = existing
    if fired_at is not None and outcome != CANCELLED:
        return "already_fired"
    if fired_at is None and due_at == deadline.due_at:
        return "unchanged"
    _REARM.write(conn, {f"new_{name}": value for name, value in columns.items()})
    return "moved" if fired_at is None else "rearmed"


def _columns(deadline: Deadline) -> dict[str, object]:
    return {
        "deadline_id": deadline.deadline_id,
        "kind": deadline.kind,
        "subject_id": deadline.subject_id,
        "contract_id": deadline.contract_id,
        "due_at": deadline.due_at,
        "created_by_event": deadline.created_by_event,
    }


# Prepared once (`store.prepared`): events schedule deadlines all the time, and SQLAlchemy's
# per-statement work costs more than running these statements on SQLite.
_STORE = InsertIfMissing(deadlines)
_EXISTING = Prepared(
    select(deadlines.c.due_at, deadlines.c.fired_at, deadlines.c.outcome)
    .where(deadlines.c.deadline_id == bindparam("id"))
    .with_for_update()
)
# Bound names differ from the column names, which SQLAlchemy reserves for SET.
_REARM = Prepared(
    update(deadlines)
    .where(deadlines.c.deadline_id == bindparam("new_deadline_id"))
    .values(
        kind=bindparam("new_kind"),
        subject_id=bindparam("new_subject_id"),
        contract_id=bindparam("new_contract_id"),
        due_at=bindparam("new_due_at"),
        created_by_event=bindparam("new_created_by_event"),
        fired_at=None,
        fired_by_event=None,
        outcome=None,
    )
)


def claim_query(
    limit: int, *, with_kinds: bool = True, with_excluded: bool = False
) -> Select[tuple[str, str, str, str | None, datetime]]:
    """The statement that claims due deadlines (`claim_due` runs it; a benchmark explains it),
    with the bound parameters `tick_at` and, `with_kinds`, the list `kinds`, and,
    `with_excluded`, the list `excluded` of deadline ids to pass over. The limit is written into
    the text, so the planner always knows how few rows it walks.

    It walks the `deadlines_due` index in its own order and stops after `limit` rows, locking
    each; rows another transaction holds are skipped rather than waited for.
    """
    query = (
        select(
            deadlines.c.deadline_id,
            deadlines.c.kind,
            deadlines.c.subject_id,
            deadlines.c.contract_id,
            deadlines.c.due_at,
        )
        .where(deadlines.c.fired_at.is_(None), deadlines.c.due_at <= bindparam("tick_at"))
        .order_by(deadlines.c.due_at, deadlines.c.deadline_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if with_kinds:
        query = query.where(deadlines.c.kind.in_(bindparam("kinds", expanding=True)))
    if with_excluded:
        query = query.where(deadlines.c.deadline_id.not_in(bindparam("excluded", expanding=True)))
    return query


# Prepared once per limit and shape (`store.prepared`): every tick claims at least once.
_CLAIMS: dict[tuple[int, bool, bool], Prepared] = {}


def claim_due(
    conn: Connection,
    tick_at: datetime,
    *,
    kinds: Collection[str] | None = None,
    excluded: Collection[str] = (),
    limit: int = 1000,
) -> list[DueDeadline]:
    """Lock and return up to `limit` unfired deadlines with `due_at <= tick_at`, oldest first.

    `kinds` limits the claim to the kinds the caller can fire: a worker of an older release
    then leaves a newer kind for the workers that know it instead of failing on it. `excluded`
    passes over deadlines by id (those whose firing failed in this tick), so that however many
    there are, the ones due after them are still reached.
    """
    if kinds is not None and not kinds:
        return []
    params: dict[str, object] = {"tick_at": tick_at}
    if kinds is not None:
        params["kinds"] = sorted(kinds)
    if excluded:
        params["excluded"] = sorted(excluded)
    shape = (limit, kinds is not None, bool(excluded))
    statement = _CLAIMS.get(shape)
    if statement is None:
        statement = _CLAIMS[shape] = Prepared(
            claim_query(limit, with_kinds=kinds is not None, with_excluded=bool(excluded))
        )
    found = statement.rows(conn, params)
    return [
        DueDeadline(deadline_id, kind, subject_id, contract_id, due_at)
        for deadline_id, kind, subject_id, contract_id, due_at in found
    ]


# Prepared once: a tick marks each deadline it fires, so this runs once a deadline.
_MARK_FIRED = Prepared(
    update(deadlines)
    .where(
        deadlines.c.deadline_id == bindparam("claimed_id"),
        deadlines.c.fired_at.is_(None),
        deadlines.c.due_at == bindparam("claimed_due_at"),
    )
    .values(fired_at=bindparam("tick_at"), fired_by_event=bindparam("tick_event"), outcome=FIRED)
)


def mark_fired(conn: Connection, deadline: DueDeadline, *, at: datetime, event_id: str) -> bool:
    """Record that the tick `event_id`, handled at `at`, fires `deadline`, before it does.

    False when the deadline no longer waits at the time it was claimed for: a deadline fired
    earlier in the same tick cancelled or moved it, so it must not fire now.
    """
    changed = _MARK_FIRED.run(
        conn,
        {
            "claimed_id": deadline.deadline_id,
            "claimed_due_at": deadline.due_at,
            "tick_at": at,
            "tick_event": event_id,
        },
    )
    return changed == 1


def record_outcome(conn: Connection, deadline_id_: str, outcome: str) -> None:
    """Note why a fired deadline changed nothing (the reason code of its refusal)."""
    _RECORD_OUTCOME.write(conn, {"fired_id": deadline_id_, "new_outcome": outcome})


_RECORD_OUTCOME = Prepared(
    update(deadlines)
    .where(deadlines.c.deadline_id == bindparam("fired_id"))
    .values(outcome=bindparam("new_outcome"))
)


def cancel(conn: Connection, kind: str, subject_id: str, *, at: datetime, event_id: str) -> bool:
    """Retire a waiting deadline whose cause went away, so it never fires; True if it waited."""
    changed = _CANCEL.run(
        conn,
        {"waiting_id": deadline_id(kind, subject_id), "cancelled_at": at, "cancelled_by": event_id},
    )
    return changed == 1


_CANCEL = Prepared(
    update(deadlines)
    .where(deadlines.c.deadline_id == bindparam("waiting_id"), deadlines.c.fired_at.is_(None))
    .values(
        fired_at=bindparam("cancelled_at"),
        fired_by_event=bindparam("cancelled_by"),
        outcome=CANCELLED,
    )
)


def find_deadline(conn: Connection, kind: str, subject_id: str) -> StoredDeadline | None:
    """The stored deadline of `kind` for `subject_id`, waiting, fired or cancelled."""
    row = (
        conn.execute(
            select(*(deadlines.c[name] for name in StoredDeadline.__dataclass_fields__)).where(
                deadlines.c.deadline_id == deadline_id(kind, subject_id)
            )
        )
        .mappings()
        .first()
    )
    return StoredDeadline(**row) if row is not None else None
