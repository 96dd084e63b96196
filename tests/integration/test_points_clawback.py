"""SC-10: every refund of a milestone claws back the points awarded for it, in proportion,
with SC-6's cumulative rounding; activity points stay; a balance may go negative."""

from __future__ import annotations

import itertools

import pytest
from engine_driver import Driver
from sqlalchemy import Engine

AMOUNT = 30000
_requests = itertools.count(1)


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    driver.fund_one_milestone(AMOUNT)
    return driver


def _refund(driver: Driver, amount: int) -> None:
    """A request before work started: refunded at once (SC-2)."""
    refunded = driver.send(
        "refund.requested",
        request_id=f"r{next(_requests)}",
        contract_id="c1",
        target_id="m1",
        amount_minor=amount,
        reason="scope cut",
    )
    assert refunded.status == "applied"


def _award(driver: Driver, points: int, milestone_id: str | None = "m1") -> None:
    for_milestone = {"milestone_id": milestone_id} if milestone_id else {}
    driver.send("points.awarded", user_id="u2", points=points, **for_milestone)


def _clawed_back(driver: Driver) -> list[int]:
    return [notice["data"]["points"] for notice in driver.notifications("points.clawed_back")]


def test_sc10_refunds_claw_back_milestone_points_with_cumulative_rounding(
    driver: Driver,
) -> None:
    """Thirds of the milestone claw back 33, 34 and 33 of 100 points: all of them, no more."""
    _award(driver, 100)
    for _ in range(3):
        _refund(driver, AMOUNT // 3)
    assert _clawed_back(driver) == [33, 34, 33]
    (first, *_) = driver.notifications("points.clawed_back")
    assert first["recipients"] == ["user:u2"]
    assert first["data"] == {"user_id": "u2", "milestone_id": "m1", "points": 33}
    assert driver.balance("points:u2", "PTS") == 0


def test_sc10_activity_points_are_never_clawed_back(driver: Driver) -> None:
    _award(driver, 40, milestone_id=None)
    _award(driver, 10)
    _refund(driver, AMOUNT)
    assert driver.balance("points:u2", "PTS") == 40


def test_sc10_points_already_cashed_out_leave_the_balance_negative(driver: Driver) -> None:
    _award(driver, 100)
    driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=100)
    _refund(driver, AMOUNT // 2)
    assert driver.balance("points:u2", "PTS") == -50


def test_sc10_award_after_a_refund_is_clawed_back_at_once(driver: Driver) -> None:
    """Points that arrive for a milestone already half refunded are half owed back."""
    _refund(driver, AMOUNT // 2)
    _award(driver, 100)
    assert driver.balance("points:u2", "PTS") == 50
    assert _clawed_back(driver) == [50]
