"""SC-10 through the engine: points awards, cash-outs and their reversal by a fraud claim."""

from __future__ import annotations

import pytest
from engine_driver import START, Driver
from sqlalchemy import Engine

from policy.apply import ApplyResult
from policy.errors import UnknownSubject


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def test_sc10_activity_points_are_awarded_to_the_users_points_account(driver: Driver) -> None:
    assert driver.send("points.awarded", user_id="u2", points=120).status == "applied"
    driver.send("points.awarded", user_id="u2", points=30)
    assert driver.balance("points:u2", "PTS") == 150


def test_sc10_award_for_an_unknown_milestone_is_an_unknown_subject(driver: Driver) -> None:
    with pytest.raises(UnknownSubject):
        driver.send("points.awarded", user_id="u2", points=10, milestone_id="m-x")
    assert driver.balance("points:u2", "PTS") == 0


def test_sc10_cashout_takes_the_points(driver: Driver) -> None:
    driver.send("points.awarded", user_id="u2", points=100)
    paid = driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=60)
    assert paid.status == "applied"
    assert driver.balance("points:u2", "PTS") == 40


def test_sc10_cashout_beyond_the_balance_is_insufficient_balance(driver: Driver) -> None:
    driver.send("points.awarded", user_id="u2", points=100)
    refused = driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=101)
    assert (refused.status, refused.reason) == ("rejected", "insufficient_balance")
    (notice,) = driver.notifications("event.rejected")
    assert notice["recipients"] == ["user:u2"]
    assert notice["data"]["event_type"] == "points.cashout_paid"
    assert notice["data"]["reason"] == "insufficient_balance"
    assert driver.balance("points:u2", "PTS") == 100


def test_sc10_fraud_claim_reverses_a_cashout_once(driver: Driver) -> None:
    driver.send("points.awarded", user_id="u2", points=100)
    driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=100)
    reversed_ = driver.send("points.cashout_reversed", cashout_id="co1", fraud_claim_id="fc-9")
    assert reversed_.status == "applied"
    assert driver.balance("points:u2", "PTS") == 100
    again = driver.send("points.cashout_reversed", cashout_id="co1", fraud_claim_id="fc-10")
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert driver.balance("points:u2", "PTS") == 100


def test_sc10_reversal_of_an_unknown_cashout_is_an_unknown_subject(driver: Driver) -> None:
    with pytest.raises(UnknownSubject):
        driver.send("points.cashout_reversed", cashout_id="co-x", fraud_claim_id="fc-1")


def test_sc10_the_same_cashout_id_twice_is_invalid_state(driver: Driver) -> None:
    driver.send("points.awarded", user_id="u2", points=100)
    driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=10)
    again = driver.send("points.cashout_paid", cashout_id="co1", user_id="u2", points=10)
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert driver.balance("points:u2", "PTS") == 90


@pytest.mark.postgres
def test_sc10_concurrent_cashouts_never_spend_the_same_points_twice(pg_engine: Engine) -> None:
    """All ask for the whole balance at once: the first takes it, the others wait and are
    refused."""
    from concurrent.futures import ThreadPoolExecutor

    driver = Driver(pg_engine)
    driver.send("points.awarded", user_id="u2", points=100)

    def cash_out(cashout_id: str) -> ApplyResult:
        return driver.send(
            "points.cashout_paid", at=START, cashout_id=cashout_id, user_id="u2", points=100
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(cash_out, ["co1", "co2", "co3", "co4"]))
    assert sorted(result.status for result in results) == ["applied"] + ["rejected"] * 3
    assert driver.balance("points:u2", "PTS") == 0
