"""Ordered intake with group commit: the intake applies a batch in the transaction that appends
it, partition by partition, and leaves to the drains exactly what it cannot apply there (a
partition a drain holds, the events behind an unfired tick), in the same order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from policy.config import load_policies
from workers.intake.barrier import Barrier
from workers.intake.drain import PARTITION_LOCK_CLASS, Drainer, RetryBudget
from workers.intake.partitions import partition_of
from workers.intake.producers import Producers
from workers.intake.service import Delivery, Intake
from workers.intake.tables import applied_steps, event_log

pytestmark = [pytest.mark.postgres]

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ENGINE_USER = "recourse"


def envelope(event_id: str, type_: str, at: datetime, **data: Any) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "schema_version": 1,
            "data": data,
        }
    )


def opened_and_funded(contract: str) -> list[str]:
    return [
        envelope(
            f"{contract}-open",
            "contract.opened",
            AT,
            contract_id=contract,
            kind="fixed",
            client_id=f"{contract}-client",
            creator_id=f"{contract}-creator",
            currency="USD",
            policy="spectrum",
        ),
        envelope(
            f"{contract}-fund",
            "milestone.funded",
            AT + timedelta(minutes=5),
            contract_id=contract,
            milestone_id=f"{contract}-m1",
            payment_id=f"{contract}-p1",
            amount_minor=10_000,
            processor_fee_minor=300,
        ),
    ]


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
    for body in opened_and_funded("k-inline"):
        setup.intake.submit(body)
    assert setup.statuses() == {"k-inline-open": "done", "k-inline-fund": "done"}
    assert setup.nudged == []  # nothing left to a drain


def test_a_partition_a_drain_holds_is_left_to_the_drains_in_order(pg_engine: Engine) -> None:
    setup = Setup(pg_engine)
    partition = partition_of("k-held")
    with pg_engine.connect() as holder:
        # A drain of the same partition, mid-batch in another session.
        holder.execute(
            text("SELECT pg_advisory_lock(:c, :p)"), {"c": PARTITION_LOCK_CLASS, "p": partition}
        )
        for body in opened_and_funded("k-held"):
            setup.intake.submit(body)
        assert setup.statuses() == {"k-held-open": "pending", "k-held-fund": "pending"}
        assert setup.nudged == [{partition}, {partition}]
        holder.execute(
            text("SELECT pg_advisory_unlock(:c, :p)"), {"c": PARTITION_LOCK_CLASS, "p": partition}
        )
        holder.commit()
    setup.drainer.drain(partition)
    assert setup.statuses() == {"k-held-open": "done", "k-held-fund": "done"}
    with pg_engine.connect() as conn:
        results = dict(conn.execute(select(event_log.c.event_id, event_log.c.result)).all())
    assert results == {"k-held-open": "applied", "k-held-fund": "applied"}


def test_events_behind_an_unfired_tick_wait_for_it(pg_engine: Engine) -> None:
    setup = Setup(pg_engine)
    tick = envelope("tick-1", "deadline.tick", AT + timedelta(minutes=1))
    opened, funded = opened_and_funded("k-tick")
    setup.intake.submit(opened)
    setup.intake.submit(tick)
    setup.intake.submit(funded)
    assert setup.statuses() == {
        "k-tick-open": "done",
        "tick-1": "pending",
        "k-tick-fund": "pending",
    }
    # The tick goes to the barrier, the funding behind it to its partition's drain.
    assert setup.nudged == [{-1}, {partition_of("k-tick")}]


def test_a_tick_in_the_batch_fires_in_it_once_the_events_before_it_are_applied(
    pg_engine: Engine,
) -> None:
    setup = Setup(pg_engine)
    barrier = Barrier(pg_engine, setup.drainer.policies, on_fired=lambda: None)
    setup.intake.apply_arrived = lambda conn, touched, events: setup.drainer.apply_arrived(
        conn, touched, events, fire_tick=barrier.fire_in
    )
    opened, funded = opened_and_funded("k-fire")
    tick = envelope("tick-2", "deadline.tick", AT + timedelta(minutes=1))
    setup.intake.receive(
        [
            Delivery(body.encode(), key, ENGINE_USER)
            for body, key in (
                (opened, "k-fire"),
                (tick, "deadline.tick"),
                (funded, "k-fire"),
            )
        ]
    )
    assert setup.statuses() == {"k-fire-open": "done", "tick-2": "done", "k-fire-fund": "done"}
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
    for body in opened_and_funded("k-broken"):
        setup.intake.submit(body)
    assert setup.statuses() == {"k-broken-open": "pending", "k-broken-fund": "pending"}
    partition = partition_of("k-broken")
    assert setup.nudged == [{partition}, {partition}]
    setup.drainer.drain(partition)
    assert setup.statuses() == {"k-broken-open": "done", "k-broken-fund": "done"}
