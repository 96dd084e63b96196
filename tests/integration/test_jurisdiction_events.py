"""SC-13 through the engine: a client in the EU gets 14 days of cooling-off from funding,
during which a refund request is refunded at once even after work started; a client in the
US gets the preset's rule (SC-3): a dispute."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from engine_driver import START, Driver
from sqlalchemy import Engine

from policy.apply import ApplyResult

FUNDED = START
AMOUNT = 50000


def _funded_and_started(driver: Driver, jurisdiction: str) -> None:
    driver.send(
        "contract.opened",
        at=FUNDED - timedelta(hours=1),
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=jurisdiction,
    )
    driver.send(
        "milestone.funded",
        at=FUNDED,
        contract_id="c1",
        milestone_id="m1",
        payment_id="p1",
        amount_minor=AMOUNT,
        processor_fee_minor=0,
    )
    driver.send(
        "work.started",
        at=FUNDED + timedelta(days=1),
        contract_id="c1",
        milestone_id="m1",
        evidence="upload",
    )


def _request(driver: Driver, at: datetime) -> ApplyResult:
    return driver.send(
        "refund.requested",
        at=at,
        request_id="r1",
        contract_id="c1",
        target_id="m1",
        amount_minor=AMOUNT,
        reason="cancelling within the legal cooling-off",
    )


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def test_sc13_de_client_is_refunded_after_work_started_within_14_days(driver: Driver) -> None:
    _funded_and_started(driver, "DE")
    assert _request(driver, FUNDED + timedelta(days=14)).status == "applied"
    assert driver.balance("user:u1") == AMOUNT + 2000
    assert driver.balance("escrow:m1") == 0
    (completed,) = driver.notifications("refund.completed")
    assert completed["data"]["cause"] == "cooling_off"
    assert driver.notifications("dispute.opened") == []


def test_sc13_de_client_after_14_days_gets_a_dispute(driver: Driver) -> None:
    _funded_and_started(driver, "DE")
    _request(driver, FUNDED + timedelta(days=14, seconds=1))
    assert driver.balance("user:u1") == 0
    assert len(driver.notifications("dispute.opened")) == 1


def test_sc13_us_client_after_work_started_gets_a_dispute(driver: Driver) -> None:
    _funded_and_started(driver, "US")
    assert _request(driver, FUNDED + timedelta(days=2)).status == "applied"
    assert driver.balance("user:u1") == 0
    assert driver.balance("escrow:m1") == AMOUNT
    assert driver.notifications("refund.completed") == []
    (opened,) = driver.notifications("dispute.opened")
    assert opened["data"]["dispute_id"] == "r1"
