"""SC-13 through the engine: a client in the EU gets 14 days of cooling-off from funding,
during which a refund request is refunded at once even after work started; a client in the
US gets the preset's rule (SC-3): a dispute."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import Book
from messages import parse_event
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.tables import outbox

FUNDED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AMOUNT = 50000


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)

    def send(self, type_: str, at: datetime, **data: Any) -> ApplyResult:
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn:
            return apply_event(conn, parse_event(body), self.policies)

    def balance(self, name: str) -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, "USD").available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(select(outbox.c.body).where(outbox.c.type == type_))
            return [json.loads(body) for (body,) in bodies]


def _funded_and_started(engine: Driver, jurisdiction: str) -> None:
    engine.send(
        "contract.opened",
        FUNDED - timedelta(hours=1),
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=jurisdiction,
    )
    engine.send(
        "milestone.funded",
        FUNDED,
        contract_id="c1",
        milestone_id="m1",
        payment_id="p1",
        amount_minor=AMOUNT,
        processor_fee_minor=0,
    )
    engine.send(
        "work.started",
        FUNDED + timedelta(days=1),
        contract_id="c1",
        milestone_id="m1",
        evidence="upload",
    )


def _request(engine: Driver, at: datetime) -> ApplyResult:
    return engine.send(
        "refund.requested",
        at,
        request_id="r1",
        contract_id="c1",
        target_id="m1",
        amount_minor=AMOUNT,
        reason="cancelling within the legal cooling-off",
    )


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def test_sc13_de_client_is_refunded_after_work_started_within_14_days(engine: Driver) -> None:
    _funded_and_started(engine, "DE")
    assert _request(engine, FUNDED + timedelta(days=14)).status == "applied"
    assert engine.balance("user:u1") == AMOUNT + 2000
    assert engine.balance("escrow:m1") == 0
    (completed,) = engine.notifications("refund.completed")
    assert completed["data"]["cause"] == "cooling_off"
    assert engine.notifications("dispute.opened") == []


def test_sc13_de_client_after_14_days_gets_a_dispute(engine: Driver) -> None:
    _funded_and_started(engine, "DE")
    _request(engine, FUNDED + timedelta(days=14, seconds=1))
    assert engine.balance("user:u1") == 0
    assert len(engine.notifications("dispute.opened")) == 1


def test_sc13_us_client_after_work_started_gets_a_dispute(engine: Driver) -> None:
    _funded_and_started(engine, "US")
    assert _request(engine, FUNDED + timedelta(days=2)).status == "applied"
    assert engine.balance("user:u1") == 0
    assert engine.balance("escrow:m1") == AMOUNT
    assert engine.notifications("refund.completed") == []
    (opened,) = engine.notifications("dispute.opened")
    assert opened["data"]["dispute_id"] == "r1"
