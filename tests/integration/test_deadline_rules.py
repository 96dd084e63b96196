"""The deadline halves of SC-4 and SC-14 through `apply_event`: a tick at or after the due
instant fires `milestone.finalized` / `dispute.overdue` exactly once, stamped with the due
instant, however many ticks come, twice delivered or a week late."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from messages import parse_event
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.tables import outbox
from store.pipelining import deferred_writes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
MICROSECOND = timedelta(microseconds=1)


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the outbox."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)

    def send(
        self, type_: str, at: datetime, event_id: str | None = None, **data: Any
    ) -> ApplyResult:
        body = {
            "event_id": event_id or f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            result = apply_event(conn, parse_event(body), self.policies)
        assert result.status != "rejected", result
        return result

    def tick(self, at: datetime, event_id: str | None = None) -> ApplyResult:
        return self.send("deadline.tick", at, event_id=event_id)

    def open(self, contract: str, kind: str, policy: str) -> None:
        self.send(
            "contract.opened",
            T0,
            contract_id=contract,
            kind=kind,
            client_id="client",
            creator_id="creator",
            currency="USD",
            policy=policy,
        )

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(
                select(outbox.c.body).where(outbox.c.type == type_).order_by(outbox.c.seq)
            )
            return [json.loads(body) for (body,) in bodies]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_sc4_a_tick_at_the_due_instant_finalizes_the_milestone_exactly_once(
    engine: Driver,
) -> None:
    """SC-4: released day 1, closed day 2: final at released + 30 days, by the first tick at
    or after it, once, whatever ticks follow."""
    engine.open("c1", "fixed", "spectrum")
    engine.send(
        "milestone.funded",
        T0,
        contract_id="c1",
        milestone_id="m1",
        payment_id="p1",
        amount_minor=50_000,
        processor_fee_minor=0,
    )
    released = T0 + DAY
    engine.send(
        "milestone.released", released, contract_id="c1", milestone_id="m1", released_by="client"
    )
    engine.send("contract.closed", T0 + 2 * DAY, contract_id="c1")
    due = released + 30 * DAY

    engine.tick(due - MICROSECOND)
    assert engine.notifications("milestone.finalized") == []
    engine.tick(due, event_id="tick-at-due")
    assert engine.tick(due, event_id="tick-at-due").status == "duplicate"
    for minutes in range(1, 6):
        engine.tick(due + timedelta(minutes=minutes))
    engine.tick(due + 7 * DAY)

    (finalized,) = engine.notifications("milestone.finalized")
    assert finalized["data"] == {"contract_id": "c1", "milestone_id": "m1"}
    assert finalized["occurred_at"] == stamp(due)
    assert finalized["notification_id"] == "deadline:milestone.finalize:m1:milestone.finalized"


def test_sc14_a_tick_after_a_week_of_silence_raises_each_overdue_dispute_once_in_due_order(
    engine: Driver,
) -> None:
    """SC-14 under `cadcrowd` too: hourly invoice disputes opened on three days, no tick for
    a week: one late tick raises the three `dispute.overdue`, oldest first, each stamped at
    its own opened_at + 5 days; later ticks raise nothing more."""
    engine.open("c1", "hourly", "cadcrowd")
    opened = {"d2": T0 + 2 * DAY, "d1": T0 + DAY, "d3": T0 + 3 * DAY + timedelta(hours=5)}
    for dispute_id, at in opened.items():
        invoice = f"inv-{dispute_id}"
        engine.send(
            "hourly.invoice_paid",
            T0,
            contract_id="c1",
            invoice_id=invoice,
            period_start="2026-02-23",
            payment_id=f"pay-{invoice}",
            amount_minor=10_000,
            processor_fee_minor=0,
        )
        engine.send(
            "dispute.opened",
            at,
            dispute_id=dispute_id,
            contract_id="c1",
            target_id=invoice,
            reason="hours not worked",
        )
    engine.tick(T0 + DAY)
    assert engine.notifications("dispute.overdue") == []

    engine.tick(T0 + 10 * DAY)
    engine.tick(T0 + 11 * DAY)

    overdue = engine.notifications("dispute.overdue")
    assert [n["data"]["dispute_id"] for n in overdue] == ["d1", "d2", "d3"]
    assert [n["occurred_at"] for n in overdue] == [
        stamp(opened[d] + 5 * DAY) for d in ("d1", "d2", "d3")
    ]
    assert all(n["recipients"] == ["dispute_team"] for n in overdue)


def test_sc14_a_dispute_resolved_before_its_deadline_is_never_overdue(engine: Driver) -> None:
    """SC-14: the resolution cancels the deadline, so even a late tick raises nothing."""
    engine.open("c1", "hourly", "cadcrowd")
    engine.send(
        "hourly.invoice_paid",
        T0,
        contract_id="c1",
        invoice_id="inv1",
        period_start="2026-02-23",
        payment_id="pay1",
        amount_minor=10_000,
        processor_fee_minor=0,
    )
    engine.send(
        "dispute.opened", T0 + DAY, dispute_id="d1", contract_id="c1", target_id="inv1", reason="x"
    )
    engine.send(
        "dispute.resolved",
        T0 + 6 * DAY - MICROSECOND,
        dispute_id="d1",
        contract_id="c1",
        outcome="release_to_creator",
    )
    engine.tick(T0 + 30 * DAY)
    assert engine.notifications("dispute.overdue") == []
