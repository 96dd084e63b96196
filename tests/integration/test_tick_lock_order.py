"""Deadline ticks on PostgreSQL never wait for a contract while they hold its deadlines.

A tick claims its due deadlines with their row locks and fires them one after another, each
firing locking its contract; an event locks its contract first, then may cancel one of its
deadlines. Met halfway, the tick held the deadline and waited for the contract while the event
held the contract and waited for the deadline: a deadlock, broken by PostgreSQL only after its
1 s `deadlock_timeout` (seen twice in a morning of benchmark runs, docs/performance.md). A tick
now locks the contracts of what it claimed without waiting, and leaves the deadlines of a
contract another transaction holds to the next tick.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_driver import Driver
from sqlalchemy import Engine, select

from policy import rows, ticks
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome
from policy.state import ContractState
from policy.subjects import lock_contract
from policy.tables import contracts
from policy.ticks import DEADLINE_HANDLERS, fires
from scheduler.store import Deadline, cancel, schedule_deadline
from scheduler.tables import deadlines

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KIND = "test.postgres.tick_lock_order"
WAIT_S = 10


@pytest.fixture(autouse=True)
def _kind_that_locks_its_contract() -> Iterator[None]:
    # As SC-4's finalize or SC-14's overdue notice do: the firing locks the deadline's
    # contract. Registered for this module's tests only.
    @fires(KIND)
    def _fire(context: HandlerContext, subject_id: str) -> Outcome:
        assert context.contract_id is not None
        lock_contract(context, context.contract_id)
        return APPLIED

    yield
    del DEADLINE_HANDLERS[KIND]


def _outcomes(engine: Engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        found = conn.execute(select(deadlines.c.subject_id, deadlines.c.outcome)).all()
    return {subject: outcome for subject, outcome in found}


def test_a_tick_leaves_the_deadlines_of_a_contract_an_event_holds_to_the_next_tick(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = Driver(pg_engine)
    opened = driver.send(
        "contract.opened",
        at=T0,
        contract_id="c1",
        kind="fixed",
        client_id="ana",
        creator_id="ben",
        currency="USD",
    )
    assert opened.status == "applied"
    with pg_engine.begin() as conn:
        for offset, subject in enumerate(("first", "second")):
            schedule_deadline(
                conn,
                Deadline(
                    kind=KIND,
                    subject_id=subject,
                    due_at=T0 + timedelta(minutes=1 + offset),
                    contract_id="c1",
                    created_by_event="setup",
                ),
            )

    contract_locked = threading.Event()
    tick_claimed = threading.Event()
    claim_due = ticks.claim_due

    def claim_then_say_so(*args: Any, **kwargs: Any) -> Any:
        claimed = claim_due(*args, **kwargs)
        tick_claimed.set()
        return claimed

    monkeypatch.setattr(ticks, "claim_due", claim_then_say_so)
    errors: list[BaseException] = []

    def event_on_the_contract() -> None:
        # What an event does: its contract first, then one of the contract's deadlines, here
        # once the tick holds them.
        try:
            with pg_engine.begin() as conn:
                assert rows.load(conn, contracts, ContractState, "c1", lock=True) is not None
                contract_locked.set()
                assert tick_claimed.wait(WAIT_S)
                assert cancel(conn, KIND, "second", at=T0 + timedelta(hours=1), event_id="e1")
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    def tick() -> None:
        try:
            assert contract_locked.wait(WAIT_S)
            assert driver.send("deadline.tick", at=T0 + timedelta(hours=1)).status == "applied"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=event_on_the_contract), threading.Thread(target=tick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    # The tick fired nothing of c1's: the event held it. The event's cancel waited for the
    # tick to commit, then went through.
    assert _outcomes(pg_engine) == {"first": None, "second": "cancelled"}
    monkeypatch.setattr(ticks, "claim_due", claim_due)
    assert driver.send("deadline.tick", at=T0 + timedelta(hours=2)).status == "applied"
    assert _outcomes(pg_engine) == {"first": "fired", "second": "cancelled"}
