"""SC-9 through the engine: add-on purchase, start and refund request on SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from engine_driver import START, Driver
from sqlalchemy import Engine

from policy.errors import UnknownSubject

BOUGHT = START


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def _buy(driver: Driver, addon_id: str = "a1", amount: int = 1500) -> None:
    bought = driver.send(
        "addon.purchased",
        at=BOUGHT,
        addon_id=addon_id,
        user_id="u1",
        kind="profile_boost",
        payment_id=f"pay-{addon_id}",
        amount_minor=amount,
        currency="USD",
    )
    assert bought.status == "applied"


def test_sc9_purchase_books_revenue_in_platform_addons(driver: Driver) -> None:
    _buy(driver)
    assert driver.balance("platform:addons") == 1500
    assert driver.balance("user:u1") == 0


def test_sc9_refund_within_24_hours_goes_to_the_buyers_balance(driver: Driver) -> None:
    _buy(driver)
    at = BOUGHT + timedelta(hours=24)
    assert driver.send("addon.refund_requested", addon_id="a1", at=at).status == "applied"
    assert driver.balance("user:u1") == 1500
    assert driver.balance("platform:addons") == 0
    (refunded,) = driver.notifications("addon.refunded")
    assert refunded["recipients"] == ["user:u1"]
    assert refunded["data"] == {
        "addon_id": "a1",
        "user_id": "u1",
        "currency": "USD",
        "amount_minor": 1500,
    }


def test_sc9_refund_after_start_is_rejected_addon_started(driver: Driver) -> None:
    _buy(driver)
    driver.send("addon.started", addon_id="a1", at=BOUGHT + timedelta(minutes=5))
    result = driver.send("addon.refund_requested", addon_id="a1", at=BOUGHT + timedelta(hours=1))
    assert (result.status, result.reason) == ("rejected", "addon_started")
    (rejected,) = driver.notifications("addon.refund_rejected")
    assert rejected["recipients"] == ["user:u1"]
    assert rejected["data"]["reason"] == "addon_started"
    assert driver.balance("platform:addons") == 1500
    assert driver.balance("user:u1") == 0


def test_sc9_refund_after_24_hours_is_rejected_window_expired(driver: Driver) -> None:
    _buy(driver)
    late = BOUGHT + timedelta(hours=24, seconds=1)
    result = driver.send("addon.refund_requested", addon_id="a1", at=late)
    assert (result.status, result.reason) == ("rejected", "window_expired")
    assert driver.notifications("addon.refund_rejected")[0]["data"]["reason"] == "window_expired"
    assert driver.balance("user:u1") == 0


def test_sc9_second_refund_request_moves_nothing(driver: Driver) -> None:
    _buy(driver)
    driver.send("addon.refund_requested", addon_id="a1", at=BOUGHT)
    again = driver.send("addon.refund_requested", addon_id="a1", at=BOUGHT + timedelta(hours=1))
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert driver.balance("user:u1") == 1500


def test_sc9_unknown_addon_is_an_unknown_subject(driver: Driver) -> None:
    with pytest.raises(UnknownSubject):
        driver.send("addon.refund_requested", addon_id="nope", at=BOUGHT)
    with pytest.raises(UnknownSubject):
        driver.send("addon.started", addon_id="nope", at=BOUGHT)


def test_sc9_addon_id_bought_twice_is_invalid_state(driver: Driver) -> None:
    _buy(driver)
    result = driver.send(
        "addon.purchased",
        addon_id="a1",
        user_id="u1",
        kind="featured_placement",
        payment_id="pay-other",
        amount_minor=900,
        currency="USD",
    )
    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert driver.balance("platform:addons") == 1500
