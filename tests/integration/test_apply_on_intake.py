"""Ordered intake with group commit: the intake applies a batch in the transaction that appends
it, partition by partition, and leaves to the drains exactly what it cannot apply there (a
partition a drain holds, the events behind an unfired tick), in the same order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ordered_driver import START, envelope, funded_contract
from sqlalchemy import Engine, select, text

from policy.config import load_policies
from workers.intake.barrier import Barrier
from workers.intake.drain import PARTITION_LOCK_CLASS, Drainer, RetryBudget
from workers.intake.partitions import partition_of
from workers.intake.producers import Producers
from workers.intake.service import Delivery, Intake
from workers.intake.tables import applied_steps, event_log

pytestmark = [pytest.mark.postgres]

ENGINE_USER = "recourse"


class Setup:
    def __init__(self, engine: Engine) -> None:
        self.nudged: list[set[int]] = []
        self.drainer = Drainer(
            engine, load_policies(), budget=RetryBudget(), retry_later=lambda _p, _s: None
        )
        self.intake = Intake(
            engine,
            Producers(ENGINE_USER),
            nudge=self.nudged.append,
            apply_arrived=self.drainer.apply_arrived,
        )
        self.engine = engine

    def statuses(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(event_log.c.event_id, event_log.c.status))
            return {event_id: status for event_id, status in rows}


def test_a_batch_is_applied_in_the_transaction_that_appends_it(pg_engine: Engine) -> None:
    setup = Setup(pg_engine)
    for body in funded_contract(1, started=False):
        setup.intake.submit(body)
    assert setup.statuses() == {"c1-open": "done", "c1-fund": "done"}
    assert setup.nudged == []  # nothing left to a drain


def test_a_partition_a_drain_holds_is_left_to_the_drains_in_order(pg_engine: Engine) -> None:
    setup = Setup(pg_engine)
    partition = partition_of("c2")
    with pg_engine.connect() as holder:
        # A drain of the same partition, mid-batch in another session.
        holder.execute(
            text("SELECT pg_advisory_lock(:c, :p)"), {"c": PARTITION_LOCK_CLASS, "p": partition}
        )
        for body in funded_contract(2, started=False):
            setup.intake.submit(body)
        assert setup.statuses() == {"c2-open": "pending", "c2-fund": "pending"}
        assert setup.nudged == [{partition}, {partition}]
        holder.execute(
            text("SELECT pg_advisory_unlock(:c, :p)"), {"c": PARTITION_LOCK_CLASS, "p": partition}
        )
        holder.commit()
    setup.drainer.drain(partition)
    assert setup.statuses() == {"c2-open": "done", "c2-fund": "done"}
    with pg_engine.connect() as conn:
        results = dict(conn.execute(select(event_log.c.event_id, event_log.c.result)).all())
    assert results == {"c2-open": "applied", "c2-fund": "applied"}


def test_events_behind_an_unfired_tick_wait_for_it(pg_engine: Engine) -> None:
    setup = Setup(pg_engine)
    tick = envelope("tick-1", "deadline.tick", START + timedelta(minutes=1))
    opened, funded = funded_contract(3, started=False)
    setup.intake.submit(opened)
    setup.intake.submit(tick)
    setup.intake.submit(funded)
    assert setup.statuses() == {
        "c3-open": "done",
        "tick-1": "pending",
        "c3-fund": "pending",
    }
    # The tick goes to the barrier, the funding behind it to its partition's drain.
    assert setup.nudged == [{-1}, {partition_of("c3")}]


def test_a_tick_in_the_batch_fires_in_it_once_the_events_before_it_are_applied(
    pg_engine: Engine,
) -> None:
    setup = Setup(pg_engine)
    barrier = Barrier(pg_engine, setup.drainer.policies, on_fired=lambda: None)
    setup.intake.apply_arrived = lambda conn, touched, events: setup.drainer.apply_arrived(
        conn, touched, events, fire_tick=barrier.fire_in
    )
    opened, funded = funded_contract(4, started=False)
    tick = envelope("tick-2", "deadline.tick", START + timedelta(minutes=1))
    setup.intake.receive(
        [
            Delivery(body.encode(), key, ENGINE_USER)
            for body, key in (
                (opened, "c4"),
                (tick, "deadline.tick"),
                (funded, "c4"),
            )
        ]
    )
    assert setup.statuses() == {"c4-open": "done", "tick-2": "done", "c4-fund": "done"}
    with pg_engine.connect() as conn:
        steps = conn.execute(
            select(applied_steps.c.log_seq, applied_steps.c.action).order_by(applied_steps.c.step)
        ).all()
    assert [tuple(step) for step in steps] == [(1, "event"), (2, "tick"), (3, "event")]
    # Only the barrier hears of the tick (it finds it fired); no partition is left.
    assert setup.nudged == [{-1}]


def test_a_failure_of_applying_on_intake_leaves_the_batch_to_the_drains(
    pg_engine: Engine,
) -> None:
    setup = Setup(pg_engine)

    def broken(conn: object, touched: set[int], events: object) -> set[int]:
        raise RuntimeError("a bug outside any one event")

    setup.intake.apply_arrived = broken
    for body in funded_contract(5, started=False):
        setup.intake.submit(body)
    assert setup.statuses() == {"c5-open": "pending", "c5-fund": "pending"}
    partition = partition_of("c5")
    assert setup.nudged == [{partition}, {partition}]
    setup.drainer.drain(partition)
    assert setup.statuses() == {"c5-open": "done", "c5-fund": "done"}
