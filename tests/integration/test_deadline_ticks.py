"""`deadline.tick` through `apply_event` on the embedded store: every due deadline fires exactly
once, in due_at order, judged at its own due time, however many ticks come and however late."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, insert, select

from messages import parse_event
from policy import ticks
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome
from policy.tables import outbox
from policy.ticks import fires
from scheduler.store import Deadline, cancel, find_deadline, schedule_deadline
from scheduler.tables import deadlines
from store.pipelining import deferred_writes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RECORD = "test.ticks.record"
REFUSE = "test.ticks.refuse"
CHAIN = "test.ticks.chain"
BROKEN = "test.ticks.broken"
REFUSED_BY_DATABASE = "test.ticks.refused_by_database"


@dataclass(frozen=True)
class Firing:
    subject_id: str
    at: datetime
    cause_id: str
    contract_id: str | None


FIRINGS: list[Firing] = []


@fires(RECORD)
def _record(context: HandlerContext, subject_id: str) -> Outcome:
    FIRINGS.append(Firing(subject_id, context.at, context.cause_id, context.contract_id))
    # A deadline may retire another one that this same tick has already claimed.
    if subject_id.startswith("cancels-"):
        cancel(
            context.conn,
            RECORD,
            subject_id.removeprefix("cancels-"),
            at=context.at,
            event_id=context.event_id,
        )
    return APPLIED


@fires(REFUSE)
def _refuse(context: HandlerContext, subject_id: str) -> Outcome:
    FIRINGS.append(Firing(subject_id, context.at, context.cause_id, context.contract_id))
    return context.reject("invalid_state", ["support"], subject_id=subject_id)


@fires(CHAIN)
def _chain(context: HandlerContext, subject_id: str) -> Outcome:
    # Firing schedules a follow-up that is already due at the same tick.
    FIRINGS.append(Firing(subject_id, context.at, context.cause_id, context.contract_id))
    context.schedule(RECORD, f"after-{subject_id}", context.at + timedelta(minutes=1))
    return APPLIED


@fires(BROKEN)
def _broken(context: HandlerContext, subject_id: str) -> Outcome:
    # Writes first (a notification, a deadline), then fails like a bug would.
    context.reject("invalid_state", ["support"], subject_id=subject_id)
    context.schedule(RECORD, f"from-{subject_id}", context.at)
    raise RuntimeError(f"broken handler for {subject_id}")


@fires(REFUSED_BY_DATABASE)
def _refused_by_database(context: HandlerContext, subject_id: str) -> Outcome:
    # A write the database refuses (a NOT NULL column left empty), as a broken row would be.
    context.conn.execute(insert(deadlines).values(deadline_id=f"bad-{subject_id}"))
    return APPLIED


@pytest.fixture(autouse=True)
def _fresh_firings() -> None:
    FIRINGS.clear()


class Clockwork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self.ticks = 0

    def schedule(self, subject: str, due_at: datetime, kind: str = RECORD) -> None:
        with self.engine.begin() as conn:
            schedule_deadline(
                conn,
                Deadline(
                    kind=kind,
                    subject_id=subject,
                    due_at=due_at,
                    contract_id=f"contract-{subject}",
                    created_by_event="setup",
                ),
            )

    def tick(self, at: datetime, event_id: str | None = None) -> ApplyResult:
        self.ticks += 1
        body = {
            "event_id": event_id or f"tick-{self.ticks}",
            "type": "deadline.tick",
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": {},
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            return apply_event(conn, parse_event(body), self.policies)


@pytest.fixture
def clock(sqlite_engine: Engine) -> Clockwork:
    return Clockwork(sqlite_engine)


def test_a_tick_fires_what_is_due_in_due_order_at_each_deadlines_own_time(
    clock: Clockwork,
) -> None:
    for minutes in (30, 10, 20, 60):
        clock.schedule(f"d{minutes}", T0 + timedelta(minutes=minutes))
    assert clock.tick(T0 + timedelta(minutes=30)).status == "applied"
    assert [(f.subject_id, f.at) for f in FIRINGS] == [
        ("d10", T0 + timedelta(minutes=10)),
        ("d20", T0 + timedelta(minutes=20)),
        ("d30", T0 + timedelta(minutes=30)),
    ]
    assert FIRINGS[0].cause_id == f"deadline:{RECORD}:d10"
    assert FIRINGS[0].contract_id == "contract-d10"


def test_a_deadline_fires_at_a_tick_exactly_at_its_due_time_and_not_one_microsecond_before(
    clock: Clockwork,
) -> None:
    clock.schedule("edge", T0)
    clock.tick(T0 - timedelta(microseconds=1))
    assert FIRINGS == []
    clock.tick(T0)
    assert [f.subject_id for f in FIRINGS] == ["edge"]


def test_each_deadline_fires_once_however_many_ticks_arrive(clock: Clockwork) -> None:
    subjects = {f"d{hour}": T0 + timedelta(hours=hour, minutes=17) for hour in range(48)}
    for subject, due_at in subjects.items():
        clock.schedule(subject, due_at)
    for minute in range(0, 50 * 60, 20):
        clock.tick(T0 + timedelta(minutes=minute))
    assert sorted(f.subject_id for f in FIRINGS) == sorted(subjects)
    assert all(f.at == subjects[f.subject_id] for f in FIRINGS)


def test_a_tick_delivered_twice_fires_nothing_twice(clock: Clockwork) -> None:
    clock.schedule("d1", T0)
    assert clock.tick(T0, event_id="tick-a").status == "applied"
    assert clock.tick(T0, event_id="tick-a").status == "duplicate"
    assert clock.tick(T0 + timedelta(minutes=1), event_id="tick-b").status == "applied"
    assert [f.subject_id for f in FIRINGS] == ["d1"]


def test_a_tick_after_a_week_of_silence_fires_everything_missed_in_due_order(
    clock: Clockwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several claim batches' worth, scheduled in random order over the silent week.
    monkeypatch.setattr(ticks, "CLAIM_BATCH", 40)
    rng = random.Random(7)
    offsets = rng.sample(range(7 * 24 * 60), 150)
    for offset in offsets:
        clock.schedule(f"m{offset:05d}", T0 + timedelta(minutes=offset))
    clock.schedule("next-week", T0 + timedelta(days=8))
    clock.tick(T0 - timedelta(minutes=1))
    assert FIRINGS == []

    clock.tick(T0 + timedelta(days=7))

    assert [f.at for f in FIRINGS] == sorted(T0 + timedelta(minutes=o) for o in offsets)
    assert len({f.subject_id for f in FIRINGS}) == 150
    clock.tick(T0 + timedelta(days=7, minutes=1))
    assert len(FIRINGS) == 150


def test_a_late_tick_is_recorded_at_its_own_time_and_the_effects_at_the_deadlines(
    sqlite_engine: Engine, clock: Clockwork
) -> None:
    clock.schedule("d1", T0)
    clock.tick(T0 + timedelta(days=3), event_id="late-tick")
    with sqlite_engine.begin() as conn:
        stored = find_deadline(conn, RECORD, "d1")
    assert stored is not None
    assert stored.fired_at == T0 + timedelta(days=3)
    assert stored.fired_by_event == "late-tick"
    assert FIRINGS[0].at == T0


def test_an_older_tick_arriving_after_a_newer_one_fires_nothing_again(clock: Clockwork) -> None:
    clock.schedule("d1", T0)
    clock.tick(T0 + timedelta(minutes=5))
    clock.tick(T0 + timedelta(minutes=1))
    assert len(FIRINGS) == 1


def test_a_deadline_cancelled_by_one_fired_earlier_in_the_same_tick_does_not_fire(
    clock: Clockwork,
) -> None:
    clock.schedule("cancels-victim", T0)
    clock.schedule("victim", T0 + timedelta(minutes=1))
    clock.tick(T0 + timedelta(hours=1))
    assert [f.subject_id for f in FIRINGS] == ["cancels-victim"]


def test_a_deadline_that_a_firing_schedules_already_due_fires_in_the_same_tick(
    clock: Clockwork,
) -> None:
    clock.schedule("c1", T0, kind=CHAIN)
    clock.tick(T0 + timedelta(hours=1))
    assert [f.subject_id for f in FIRINGS] == ["c1", "after-c1"]
    assert FIRINGS[1].at == T0 + timedelta(minutes=1)


def test_a_refusing_deadline_fires_once_and_records_its_reason(
    sqlite_engine: Engine, clock: Clockwork
) -> None:
    clock.schedule("r1", T0, kind=REFUSE)
    assert clock.tick(T0).status == "applied"
    clock.tick(T0 + timedelta(minutes=1))
    with sqlite_engine.begin() as conn:
        stored = find_deadline(conn, REFUSE, "r1")
    assert stored is not None
    assert stored.outcome == "invalid_state"
    assert len(FIRINGS) == 1


def test_a_kind_no_handler_knows_waits_for_a_worker_that_knows_it(
    sqlite_engine: Engine, clock: Clockwork
) -> None:
    clock.schedule("u1", T0, kind="test.ticks.from_a_newer_release")
    clock.schedule("d1", T0)
    assert clock.tick(T0 + timedelta(hours=1)).status == "applied"
    assert [f.subject_id for f in FIRINGS] == ["d1"]
    with sqlite_engine.begin() as conn:
        waiting = find_deadline(conn, "test.ticks.from_a_newer_release", "u1")
    assert waiting is not None
    assert waiting.fired_at is None


def test_a_deadline_whose_handler_raises_holds_back_no_other_and_waits_for_a_fix(
    sqlite_engine: Engine, clock: Clockwork
) -> None:
    clock.schedule("b0", T0 - timedelta(hours=1))
    clock.schedule("x1", T0, kind=BROKEN)
    clock.schedule("b2", T0 + timedelta(minutes=1))

    def fired_at(kind: str, subject: str) -> datetime | None:
        with sqlite_engine.begin() as conn:
            stored = find_deadline(conn, kind, subject)
        assert stored is not None
        return stored.fired_at

    first, second = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    assert clock.tick(first).status == "applied"
    assert (fired_at(RECORD, "b0"), fired_at(RECORD, "b2")) == (first, first)
    assert fired_at(BROKEN, "x1") is None
    clock.schedule("b3", T0 + timedelta(hours=2))
    assert clock.tick(second).status == "applied"
    assert fired_at(RECORD, "b3") == second
    assert fired_at(BROKEN, "x1") is None

    with sqlite_engine.begin() as conn:
        # Nothing the failed firings wrote is left: not their notice, not their deadline.
        assert find_deadline(conn, RECORD, "from-x1") is None
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


def _fired_at(engine: Engine, kind: str, subject: str) -> datetime | None:
    with engine.begin() as conn:
        stored = find_deadline(conn, kind, subject)
    assert stored is not None
    return stored.fired_at


def test_more_failing_deadlines_than_one_claim_takes_hold_back_none_due_after_them(
    sqlite_engine: Engine, clock: Clockwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ticks, "CLAIM_BATCH", 2)
    clock.schedule("x1", T0, kind=BROKEN)
    clock.schedule("x2", T0 + timedelta(seconds=1), kind=BROKEN)
    clock.schedule("b3", T0 + timedelta(seconds=2))

    at = T0 + timedelta(hours=1)
    assert clock.tick(at).status == "applied"

    assert _fired_at(sqlite_engine, RECORD, "b3") == at
    assert _fired_at(sqlite_engine, BROKEN, "x1") is None
    assert _fired_at(sqlite_engine, BROKEN, "x2") is None


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_a_deadline_whose_write_the_database_refuses_holds_back_no_other(
    backend: str, request: pytest.FixtureRequest
) -> None:
    engine = request.getfixturevalue("sqlite_engine" if backend == "sqlite" else "pg_engine")
    assert isinstance(engine, Engine)
    clock = Clockwork(engine)
    clock.schedule("z1", T0, kind=REFUSED_BY_DATABASE)
    clock.schedule("b2", T0 + timedelta(minutes=1))

    at = T0 + timedelta(hours=1)
    assert clock.tick(at).status == "applied"

    assert _fired_at(engine, RECORD, "b2") == at
    assert _fired_at(engine, REFUSED_BY_DATABASE, "z1") is None
