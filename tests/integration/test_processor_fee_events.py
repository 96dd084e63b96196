"""SC-7, second half, through the engine: when the processor refunds its fee, the platform's
cost drops and every deduction taken from the client's small refunds goes back to them."""

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
from policy.errors import UnknownSubject
from policy.tables import outbox

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AMOUNT = 50000  # client fee 2000 under spectrum
PROCESSOR_FEE = 1480


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)
        self.at = AT

    def send(self, type_: str, **data: Any) -> ApplyResult:
        self.at += timedelta(hours=1)
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": self.at.isoformat(),
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


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    driver.send(
        "contract.opened",
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
    )
    driver.send(
        "milestone.funded",
        contract_id="c1",
        milestone_id="m1",
        payment_id="p1",
        amount_minor=AMOUNT,
        processor_fee_minor=PROCESSOR_FEE,
    )
    return driver


def _small_refund(engine: Driver, request_id: str, amount: int) -> None:
    result = engine.send(
        "refund.requested",
        request_id=request_id,
        contract_id="c1",
        target_id="m1",
        amount_minor=amount,
        reason="part of the work is not needed",
    )
    assert result.status == "applied"


def _fee_refunded(engine: Driver, amount: int = PROCESSOR_FEE) -> ApplyResult:
    return engine.send("processor.fee_refunded", payment_id="p1", amount_minor=amount)


def test_sc7_fee_refund_passes_every_deduction_back_to_the_client(engine: Driver) -> None:
    """Two refunds of $10 each lose round_half_even(1480 x 1000 / 50000) = 30 cents."""
    _small_refund(engine, "r1", 1000)
    _small_refund(engine, "r2", 1000)
    # Each refund: 1000 + 40 of client fee - 30 deducted.
    assert engine.balance("user:u1") == 2 * 1010
    assert engine.balance("platform:processor_fees") == -PROCESSOR_FEE + 60
    assert _fee_refunded(engine).status == "applied"
    assert engine.balance("user:u1") == 2 * 1040
    # The platform bears nothing any more: the processor took its fee back to zero.
    assert engine.balance("platform:processor_fees") == 0
    (passed,) = engine.notifications("processor_fee.passed_through")
    assert passed["recipients"] == ["user:u1"]
    assert passed["data"] == {
        "payment_id": "p1",
        "contract_id": "c1",
        "currency": "USD",
        "processor_fee_refunded_minor": PROCESSOR_FEE,
        "passed_to_client_minor": 60,
    }


def test_sc7_without_deductions_only_the_platform_cost_drops(engine: Driver) -> None:
    assert _fee_refunded(engine, 480).status == "applied"
    assert engine.balance("platform:processor_fees") == -1000
    assert engine.balance("user:u1") == 0
    assert engine.notifications("processor_fee.passed_through") == []


def test_sc7_after_the_fee_refund_small_refunds_keep_their_processor_share(
    engine: Driver,
) -> None:
    _small_refund(engine, "r1", 1000)
    _fee_refunded(engine)
    _small_refund(engine, "r2", 1000)
    assert engine.balance("user:u1") == 2 * 1040
    assert len(engine.notifications("processor_fee.passed_through")) == 1


def test_sc7_a_deduction_is_passed_back_only_once(engine: Driver) -> None:
    _small_refund(engine, "r1", 1000)
    _fee_refunded(engine, 1000)
    _fee_refunded(engine, 480)
    assert engine.balance("user:u1") == 1040
    assert engine.balance("platform:processor_fees") == 0
    assert len(engine.notifications("processor_fee.passed_through")) == 1


def test_sc7_refund_beyond_the_processor_fee_is_exceeds_refundable(engine: Driver) -> None:
    refused = _fee_refunded(engine, PROCESSOR_FEE + 1)
    assert (refused.status, refused.reason) == ("rejected", "exceeds_refundable")
    assert engine.balance("platform:processor_fees") == -PROCESSOR_FEE


def test_sc7_fee_refund_for_an_unknown_payment_is_an_unknown_subject(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.send("processor.fee_refunded", payment_id="p-x", amount_minor=1)
