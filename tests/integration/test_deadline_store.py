"""The deadline store on the embedded database: scheduling is idempotent, a due time can move,
a cancelled deadline never fires, and claims come oldest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, func, select

from scheduler.store import (
    Deadline,
    cancel,
    claim_due,
    find_deadline,
    mark_fired,
    schedule_deadline,
)
from scheduler.tables import deadlines

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def deadline(subject: str, due_at: datetime, kind: str = "test.kind") -> Deadline:
    return Deadline(
        kind=kind, subject_id=subject, due_at=due_at, contract_id="c1", created_by_event="e1"
    )


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(deadlines)).scalar_one())


def test_scheduling_the_same_deadline_twice_is_a_no_op(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        assert schedule_deadline(conn, deadline("m1", T0)) == "stored"
        assert schedule_deadline(conn, deadline("m1", T0)) == "unchanged"
    with sqlite_engine.begin() as conn:
        assert schedule_deadline(conn, deadline("m1", T0)) == "unchanged"
    assert count(sqlite_engine) == 1


def test_a_waiting_deadline_moves_to_its_new_due_time(sqlite_engine: Engine) -> None:
    later = T0 + timedelta(days=3)
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0))
        assert schedule_deadline(conn, deadline("m1", later)) == "moved"
        assert claim_due(conn, T0 + timedelta(days=1)) == []
        (due,) = claim_due(conn, later)
    assert due.due_at == later
    assert count(sqlite_engine) == 1


def test_a_cancelled_deadline_is_never_claimed(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0))
        assert cancel(conn, "test.kind", "m1", at=T0, event_id="e2")
        assert not cancel(conn, "test.kind", "m1", at=T0, event_id="e3")
        assert claim_due(conn, T0 + timedelta(days=3650)) == []
        stored = find_deadline(conn, "test.kind", "m1")
    assert stored is not None
    assert stored.outcome == "cancelled"
    assert stored.fired_by_event == "e2"


def test_a_cancelled_deadline_is_rearmed_by_a_new_cause(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0))
        cancel(conn, "test.kind", "m1", at=T0, event_id="e2")
        assert schedule_deadline(conn, deadline("m1", T0 + timedelta(hours=1))) == "rearmed"
        (due,) = claim_due(conn, T0 + timedelta(hours=1))
    assert due.deadline_id == "test.kind:m1"


def test_a_fired_deadline_is_never_scheduled_again(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0))
        (due,) = claim_due(conn, T0)
        assert mark_fired(conn, due, at=T0, event_id="tick-1")
        assert schedule_deadline(conn, deadline("m1", T0 + timedelta(days=1))) == "already_fired"
        assert claim_due(conn, T0 + timedelta(days=2)) == []
        stored = find_deadline(conn, "test.kind", "m1")
    assert stored is not None
    assert (stored.outcome, stored.fired_by_event, stored.due_at) == ("fired", "tick-1", T0)


def test_a_claimed_deadline_that_was_moved_meanwhile_is_not_marked(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0))
        (due,) = claim_due(conn, T0)
        schedule_deadline(conn, deadline("m1", T0 + timedelta(days=1)))
        assert not mark_fired(conn, due, at=T0, event_id="tick-1")
        cancel(conn, "test.kind", "m1", at=T0, event_id="e2")
        assert not mark_fired(conn, due, at=T0, event_id="tick-1")


def test_claims_come_oldest_first_up_to_the_limit_and_the_tick_time(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.begin() as conn:
        for hours in (5, 1, 3, 2, 4, 9):
            schedule_deadline(conn, deadline(f"s{hours}", T0 + timedelta(hours=hours)))
        # Two deadlines due at the same instant come in id order.
        schedule_deadline(conn, deadline("s2b", T0 + timedelta(hours=2)))
        first = claim_due(conn, T0 + timedelta(hours=5), limit=3)
        every = claim_due(conn, T0 + timedelta(hours=5))
    assert [d.subject_id for d in first] == ["s1", "s2", "s2b"]
    assert [d.subject_id for d in every] == ["s1", "s2", "s2b", "s3", "s4", "s5"]


def test_a_claim_takes_only_the_kinds_asked_for(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", T0, kind="known"))
        schedule_deadline(conn, deadline("m1", T0, kind="from.a.newer.release"))
        claimed = claim_due(conn, T0, kinds={"known"})
        assert claim_due(conn, T0, kinds=set()) == []
    assert [d.deadline_id for d in claimed] == ["known:m1"]


def test_a_deadline_is_stored_in_utc_whatever_offset_it_was_given(sqlite_engine: Engine) -> None:
    local = T0.astimezone(timezone(timedelta(hours=-7)))
    with sqlite_engine.begin() as conn:
        schedule_deadline(conn, deadline("m1", local))
        (due,) = claim_due(conn, T0)
    assert due.due_at == T0
    assert due.due_at.tzinfo is UTC
