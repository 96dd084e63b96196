"""SC-7, second half, through the engine: when the processor refunds its fee, the platform's
cost drops and every deduction taken from the client's small refunds goes back to them."""

from __future__ import annotations

import pytest
from engine_driver import Driver
from sqlalchemy import Engine

from policy.apply import ApplyResult
from policy.errors import UnknownSubject

AMOUNT = 50000  # client fee 2000 under spectrum
PROCESSOR_FEE = 1480


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    driver.fund_one_milestone(AMOUNT, PROCESSOR_FEE)
    return driver


def _small_refund(driver: Driver, request_id: str, amount: int) -> None:
    result = driver.send(
        "refund.requested",
        request_id=request_id,
        contract_id="c1",
        target_id="m1",
        amount_minor=amount,
        reason="part of the work is not needed",
    )
    assert result.status == "applied"


def _fee_refunded(driver: Driver, amount: int = PROCESSOR_FEE) -> ApplyResult:
    return driver.send("processor.fee_refunded", payment_id="p1", amount_minor=amount)


def test_sc7_fee_refund_passes_every_deduction_back_to_the_client(driver: Driver) -> None:
    """Two refunds of $10 each lose round_half_even(1480 x 1000 / 50000) = 30 cents."""
    _small_refund(driver, "r1", 1000)
    _small_refund(driver, "r2", 1000)
    # Each refund: 1000 + 40 of client fee - 30 deducted.
    assert driver.balance("user:u1") == 2 * 1010
    assert driver.balance("platform:processor_fees") == -PROCESSOR_FEE + 60
    assert _fee_refunded(driver).status == "applied"
    assert driver.balance("user:u1") == 2 * 1040
    # The platform bears nothing any more: the processor took its fee back to zero.
    assert driver.balance("platform:processor_fees") == 0
    (passed,) = driver.notifications("processor_fee.passed_through")
    assert passed["recipients"] == ["user:u1"]
    assert passed["data"] == {
        "payment_id": "p1",
        "contract_id": "c1",
        "currency": "USD",
        "processor_fee_refunded_minor": PROCESSOR_FEE,
        "passed_to_client_minor": 60,
    }


def test_sc7_without_deductions_only_the_platform_cost_drops(driver: Driver) -> None:
    assert _fee_refunded(driver, 480).status == "applied"
    assert driver.balance("platform:processor_fees") == -1000
    assert driver.balance("user:u1") == 0
    assert driver.notifications("processor_fee.passed_through") == []


def test_sc7_after_the_fee_refund_small_refunds_keep_their_processor_share(
    driver: Driver,
) -> None:
    _small_refund(driver, "r1", 1000)
    _fee_refunded(driver)
    _small_refund(driver, "r2", 1000)
    assert driver.balance("user:u1") == 2 * 1040
    assert len(driver.notifications("processor_fee.passed_through")) == 1


def test_sc7_a_deduction_is_passed_back_only_once(driver: Driver) -> None:
    _small_refund(driver, "r1", 1000)
    _fee_refunded(driver, 1000)
    _fee_refunded(driver, 480)
    assert driver.balance("user:u1") == 1040
    assert driver.balance("platform:processor_fees") == 0
    assert len(driver.notifications("processor_fee.passed_through")) == 1


def test_sc7_refund_beyond_the_processor_fee_is_exceeds_refundable(driver: Driver) -> None:
    refused = _fee_refunded(driver, PROCESSOR_FEE + 1)
    assert (refused.status, refused.reason) == ("rejected", "exceeds_refundable")
    assert driver.balance("platform:processor_fees") == -PROCESSOR_FEE


def test_sc7_fee_refund_for_an_unknown_payment_is_an_unknown_subject(driver: Driver) -> None:
    with pytest.raises(UnknownSubject):
        driver.send("processor.fee_refunded", payment_id="p-x", amount_minor=1)
