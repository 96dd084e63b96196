"""SC-11 and SC-12 through the engine: a chargeback freezes, then settles either way."""

from __future__ import annotations

import pytest
from engine_driver import Driver
from sqlalchemy import Engine

from ledger import Book
from policy import rows
from policy.apply import ApplyResult
from policy.errors import UnknownSubject
from policy.state import TargetState
from policy.tables import targets

AMOUNT = 50000  # $500: client fee $20, creator fee $40 under spectrum
CHARGE = 52000
ISSUER_FEE = 1500


def _frozen(driver: Driver, milestone_id: str) -> tuple[bool, bool]:
    """(the milestone's row says frozen, its escrow account is frozen in the ledger)"""
    with driver.engine.begin() as conn:
        target = rows.load(conn, targets, TargetState, milestone_id)
        assert target is not None
        return target.frozen, Book(conn).is_frozen(f"escrow:{milestone_id}", "USD")


def _open_contract(driver: Driver, *milestones: tuple[str, int]) -> None:
    driver.send(
        "contract.opened",
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
    )
    for milestone_id, amount in milestones:
        funded = driver.send(
            "milestone.funded",
            contract_id="c1",
            milestone_id=milestone_id,
            payment_id="p1",
            amount_minor=amount,
            processor_fee_minor=0,
        )
        assert funded.status == "applied"


@pytest.fixture
def driver(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    _open_contract(driver, ("m1", AMOUNT))
    return driver


def _charge_back(driver: Driver, amount: int = CHARGE, chargeback_id: str = "cb1") -> None:
    result = driver.send(
        "chargeback.opened",
        chargeback_id=chargeback_id,
        payment_id="p1",
        amount_minor=amount,
        issuer_fee_minor=ISSUER_FEE,
    )
    assert result.status == "applied"


def _release(driver: Driver, milestone_id: str = "m1") -> ApplyResult:
    return driver.send(
        "milestone.released", contract_id="c1", milestone_id=milestone_id, released_by="client"
    )


def test_sc11_open_takes_a_plus_f_and_freezes_the_escrow(driver: Driver) -> None:
    _charge_back(driver)
    # platform:chargebacks is a cost: -53500 in the book is 535.00 the issuer took.
    assert driver.balance("platform:chargebacks") == -(CHARGE + ISSUER_FEE)
    assert driver.balance("escrow:m1") == AMOUNT
    assert _frozen(driver, "m1") == (True, True)
    (frozen,) = driver.notifications("escrow.frozen")
    assert frozen["recipients"] == ["user:u1", "user:u2"]
    assert frozen["data"] == {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "contract_id": "c1",
        "milestone_ids": ["m1"],
    }


def test_sc11_frozen_milestone_refuses_release_and_refund(driver: Driver) -> None:
    _charge_back(driver)
    released = _release(driver)
    assert (released.status, released.reason) == ("rejected", "frozen")
    requested = driver.send(
        "refund.requested",
        request_id="r1",
        contract_id="c1",
        target_id="m1",
        amount_minor=10000,
        reason="changed my mind",
    )
    assert (requested.status, requested.reason) == ("rejected", "frozen")
    approved = driver.send(
        "refund.approved", contract_id="c1", target_id="m1", amount_minor=100, approved_by="creator"
    )
    assert (approved.status, approved.reason) == ("rejected", "frozen")
    assert driver.balance("escrow:m1") == AMOUNT
    assert driver.balance("user:u1") == 0
    assert driver.balance("user:u2") == 0


def test_sc11_client_won_in_full_leaves_f_in_platform_chargebacks(driver: Driver) -> None:
    _charge_back(driver)
    won = driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert won.status == "applied"
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    assert driver.balance("escrow:m1") == 0
    assert driver.balance("platform:fees") == 0
    assert driver.balance("user:u1") == 0  # the card gave it back, not the balance
    assert _frozen(driver, "m1") == (False, False)
    (resolved,) = driver.notifications("chargeback.resolved")
    assert resolved["recipients"] == ["user:u1", "user:u2"]
    assert resolved["data"]["outcome"] == "client_won"
    assert resolved["data"]["passed_to_client_minor"] == 0
    assert len(driver.notifications("escrow.unfrozen")) == 1


def test_sc11_client_won_after_release_claws_back_from_the_creator(driver: Driver) -> None:
    """The SC-6 example settled by a chargeback: the creator gives back 460, fees 60."""
    assert _release(driver).status == "applied"
    assert driver.balance("user:u2") == 46000
    _charge_back(driver)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("user:u2") == 0
    assert driver.balance("platform:fees") == 0
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    assert driver.balance("user:u1") == 0


def test_sc11_partial_chargeback_refunds_its_ratio_and_unfreezes_the_rest(driver: Driver) -> None:
    """$130 of the $520 charge: refund $125 from escrow and $5 of client fee."""
    _charge_back(driver, 13000)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    assert driver.balance("escrow:m1") == 37500
    assert driver.balance("platform:fees") == 2000 - 500
    assert _release(driver).status == "applied"
    # The creator fee on the rest: $40 less the $10 reversed with the refunded quarter.
    assert driver.balance("user:u2") == 37500 - 3000
    assert driver.balance("escrow:m1") == 0


def test_sc11_rounding_cent_the_refund_cannot_reach_comes_from_the_client(
    sqlite_engine: Engine,
) -> None:
    """Amount 100, fee 4: a 13-cent chargeback is a 12-cent refund crediting 12, or a 13-cent
    one crediting 14. The engine refunds 12 and takes the cent from the client's balance, so
    platform:chargebacks keeps exactly F."""
    driver = Driver(sqlite_engine)
    _open_contract(driver, ("m1", 100))
    _charge_back(driver, 13)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    assert driver.balance("escrow:m1") == 88
    assert driver.balance("user:u1") == -1
    (resolved,) = driver.notifications("chargeback.resolved")
    assert resolved["data"]["passed_to_client_minor"] == 1


def test_sc11_one_payment_for_two_milestones_settles_both(sqlite_engine: Engine) -> None:
    driver = Driver(sqlite_engine)
    _open_contract(driver, ("m1", 30000), ("m2", 20000))
    _charge_back(driver, CHARGE)
    (frozen,) = driver.notifications("escrow.frozen")
    assert frozen["data"]["milestone_ids"] == ["m1", "m2"]
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("escrow:m1") == 0
    assert driver.balance("escrow:m2") == 0
    assert driver.balance("platform:fees") == 0
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE


def test_sc11_client_lost_returns_a_and_passes_f_to_the_client(driver: Driver) -> None:
    _charge_back(driver)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_lost")
    assert driver.balance("platform:chargebacks") == 0
    assert driver.balance("user:u1") == -ISSUER_FEE
    assert driver.balance("escrow:m1") == AMOUNT
    assert _frozen(driver, "m1") == (False, False)
    (unfrozen,) = driver.notifications("escrow.unfrozen")
    assert unfrozen["recipients"] == ["user:u1", "user:u2"]
    assert unfrozen["data"]["milestone_ids"] == ["m1"]
    (resolved,) = driver.notifications("chargeback.resolved")
    assert resolved["data"]["outcome"] == "client_lost"
    assert resolved["data"]["passed_to_client_minor"] == ISSUER_FEE
    assert _release(driver).status == "applied"


def test_sc11_resolving_twice_is_invalid_state(driver: Driver) -> None:
    _charge_back(driver)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_lost")
    again = driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert driver.balance("user:u1") == -ISSUER_FEE


def test_sc11_a_second_open_chargeback_on_the_payment_is_invalid_state(driver: Driver) -> None:
    _charge_back(driver, 1000)
    second = driver.send(
        "chargeback.opened",
        chargeback_id="cb2",
        payment_id="p1",
        amount_minor=1000,
        issuer_fee_minor=0,
    )
    assert (second.status, second.reason) == ("rejected", "invalid_state")
    assert driver.balance("platform:chargebacks") == -(1000 + ISSUER_FEE)


def test_sc11_unknown_payment_or_chargeback_is_an_unknown_subject(driver: Driver) -> None:
    with pytest.raises(UnknownSubject):
        driver.send(
            "chargeback.opened",
            chargeback_id="cb1",
            payment_id="p-x",
            amount_minor=100,
            issuer_fee_minor=0,
        )
    with pytest.raises(UnknownSubject):
        driver.send("chargeback.resolved", chargeback_id="cb-x", outcome="client_won")


def test_sc11_won_chargeback_claws_back_the_milestones_points(driver: Driver) -> None:
    """SC-10 rides along: the settlement is a refund of the milestone."""
    driver.send("points.awarded", user_id="u2", points=100, milestone_id="m1")
    _charge_back(driver, 13000)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("points:u2", "PTS") == 75


def test_sc12_chargeback_on_work_accepted_in_full_flags_the_client(driver: Driver) -> None:
    _release(driver)
    _charge_back(driver)
    (flagged,) = driver.notifications("account.flagged")
    assert flagged["recipients"] == ["support"]
    assert flagged["data"] == {
        "user_id": "u1",
        "reason": "chargeback_on_accepted_work",
        "chargeback_id": "cb1",
    }


def test_sc12_chargeback_while_escrow_holds_money_flags_nobody(driver: Driver) -> None:
    _charge_back(driver)
    assert driver.notifications("account.flagged") == []


def test_sc11_addon_chargeback_won_takes_back_the_sale(sqlite_engine: Engine) -> None:
    driver = Driver(sqlite_engine)
    driver.send(
        "addon.purchased",
        addon_id="a1",
        user_id="u9",
        kind="profile_boost",
        payment_id="pa1",
        amount_minor=1500,
        currency="USD",
    )
    opened = driver.send(
        "chargeback.opened",
        chargeback_id="cb1",
        payment_id="pa1",
        amount_minor=1500,
        issuer_fee_minor=ISSUER_FEE,
    )
    assert opened.status == "applied"
    assert driver.notifications("escrow.frozen") == []
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("platform:addons") == 0
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    refused = driver.send("addon.refund_requested", addon_id="a1")
    assert (refused.status, refused.reason) == ("rejected", "invalid_state")
    assert driver.balance("user:u9") == 0


@pytest.mark.postgres
def test_sc11_settlement_on_postgresql(pg_engine: Engine) -> None:
    """The freeze, the settlement from a released milestone and the audit, on PostgreSQL."""
    from ledger import audit

    driver = Driver(pg_engine)
    _open_contract(driver, ("m1", AMOUNT))
    _release(driver)
    _charge_back(driver)
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
    assert driver.balance("user:u2") == 0
    with pg_engine.begin() as conn:
        assert audit(conn).ok


def test_sc11_won_chargeback_on_an_invoice_claws_back_from_the_creator(
    sqlite_engine: Engine,
) -> None:
    """An hourly invoice has no escrow: the settlement takes the creator's share back."""
    driver = Driver(sqlite_engine)
    driver.send(
        "contract.opened",
        contract_id="c2",
        kind="hourly",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
    )
    paid = driver.send(
        "hourly.invoice_paid",
        contract_id="c2",
        invoice_id="i1",
        period_start="2026-02-23",
        payment_id="p2",
        amount_minor=AMOUNT,
        processor_fee_minor=0,
    )
    assert paid.status == "applied"
    assert driver.balance("user:u2") == 46000
    driver.send(
        "chargeback.opened",
        chargeback_id="cb1",
        payment_id="p2",
        amount_minor=CHARGE,
        issuer_fee_minor=ISSUER_FEE,
    )
    assert driver.notifications("escrow.frozen") == []
    assert driver.notifications("account.flagged") == []
    driver.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert driver.balance("user:u2") == 0
    assert driver.balance("platform:fees") == 0
    assert driver.balance("platform:chargebacks") == -ISSUER_FEE
