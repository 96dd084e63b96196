"""SC-11 and SC-12 through the engine: a chargeback freezes, then settles either way."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import Book
from messages import parse_event
from policy import rows
from policy.apply import ApplyResult, apply_event
from policy.config import load_policies
from policy.errors import UnknownSubject
from policy.state import TargetState
from policy.tables import outbox, targets

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AMOUNT = 50000  # $500: client fee $20, creator fee $40 under spectrum
CHARGE = 52000
ISSUER_FEE = 1500


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

    def balance(self, name: str, currency: str = "USD") -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, currency).available_minor

    def frozen(self, milestone_id: str) -> tuple[bool, bool]:
        """(the milestone's row says frozen, its escrow account is frozen in the ledger)"""
        with self.engine.begin() as conn:
            target = rows.load(conn, targets, TargetState, milestone_id)
            assert target is not None
            return target.frozen, Book(conn).is_frozen(f"escrow:{milestone_id}", "USD")

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(select(outbox.c.body).where(outbox.c.type == type_))
            return [json.loads(body) for (body,) in bodies]


def _open_contract(engine: Driver, *milestones: tuple[str, int]) -> None:
    engine.send(
        "contract.opened",
        contract_id="c1",
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
    )
    for milestone_id, amount in milestones:
        funded = engine.send(
            "milestone.funded",
            contract_id="c1",
            milestone_id=milestone_id,
            payment_id="p1",
            amount_minor=amount,
            processor_fee_minor=0,
        )
        assert funded.status == "applied"


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    _open_contract(driver, ("m1", AMOUNT))
    return driver


def _charge_back(engine: Driver, amount: int = CHARGE, chargeback_id: str = "cb1") -> None:
    result = engine.send(
        "chargeback.opened",
        chargeback_id=chargeback_id,
        payment_id="p1",
        amount_minor=amount,
        issuer_fee_minor=ISSUER_FEE,
    )
    assert result.status == "applied"


def _release(engine: Driver, milestone_id: str = "m1") -> ApplyResult:
    return engine.send(
        "milestone.released", contract_id="c1", milestone_id=milestone_id, released_by="client"
    )


def test_sc11_open_takes_a_plus_f_and_freezes_the_escrow(engine: Driver) -> None:
    _charge_back(engine)
    # platform:chargebacks is a cost: -53500 in the book is 535.00 the issuer took.
    assert engine.balance("platform:chargebacks") == -(CHARGE + ISSUER_FEE)
    assert engine.balance("escrow:m1") == AMOUNT
    assert engine.frozen("m1") == (True, True)
    (frozen,) = engine.notifications("escrow.frozen")
    assert frozen["recipients"] == ["user:u1", "user:u2"]
    assert frozen["data"] == {
        "chargeback_id": "cb1",
        "payment_id": "p1",
        "contract_id": "c1",
        "milestone_ids": ["m1"],
    }


def test_sc11_frozen_milestone_refuses_release_and_refund(engine: Driver) -> None:
    _charge_back(engine)
    released = _release(engine)
    assert (released.status, released.reason) == ("rejected", "frozen")
    requested = engine.send(
        "refund.requested",
        request_id="r1",
        contract_id="c1",
        target_id="m1",
        amount_minor=10000,
        reason="changed my mind",
    )
    assert (requested.status, requested.reason) == ("rejected", "frozen")
    approved = engine.send(
        "refund.approved", contract_id="c1", target_id="m1", amount_minor=100, approved_by="creator"
    )
    assert (approved.status, approved.reason) == ("rejected", "frozen")
    assert engine.balance("escrow:m1") == AMOUNT
    assert engine.balance("user:u1") == 0
    assert engine.balance("user:u2") == 0


def test_sc11_client_won_in_full_leaves_f_in_platform_chargebacks(engine: Driver) -> None:
    _charge_back(engine)
    won = engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert won.status == "applied"
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    assert engine.balance("escrow:m1") == 0
    assert engine.balance("platform:fees") == 0
    assert engine.balance("user:u1") == 0  # the card gave it back, not the balance
    assert engine.frozen("m1") == (False, False)
    (resolved,) = engine.notifications("chargeback.resolved")
    assert resolved["recipients"] == ["user:u1", "user:u2"]
    assert resolved["data"]["outcome"] == "client_won"
    assert resolved["data"]["passed_to_client_minor"] == 0
    assert len(engine.notifications("escrow.unfrozen")) == 1


def test_sc11_client_won_after_release_claws_back_from_the_creator(engine: Driver) -> None:
    """The SC-6 example settled by a chargeback: the creator gives back 460, fees 60."""
    assert _release(engine).status == "applied"
    assert engine.balance("user:u2") == 46000
    _charge_back(engine)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("user:u2") == 0
    assert engine.balance("platform:fees") == 0
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    assert engine.balance("user:u1") == 0


def test_sc11_partial_chargeback_refunds_its_ratio_and_unfreezes_the_rest(engine: Driver) -> None:
    """$130 of the $520 charge: refund $125 from escrow and $5 of client fee."""
    _charge_back(engine, 13000)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    assert engine.balance("escrow:m1") == 37500
    assert engine.balance("platform:fees") == 2000 - 500
    assert _release(engine).status == "applied"
    # The creator fee on the rest: $40 less the $10 reversed with the refunded quarter.
    assert engine.balance("user:u2") == 37500 - 3000
    assert engine.balance("escrow:m1") == 0


def test_sc11_rounding_cent_the_refund_cannot_reach_comes_from_the_client(
    sqlite_engine: Engine,
) -> None:
    """Amount 100, fee 4: a 13-cent chargeback is a 12-cent refund crediting 12, or a 13-cent
    one crediting 14. The engine refunds 12 and takes the cent from the client's balance, so
    platform:chargebacks keeps exactly F."""
    engine = Driver(sqlite_engine)
    _open_contract(engine, ("m1", 100))
    _charge_back(engine, 13)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    assert engine.balance("escrow:m1") == 88
    assert engine.balance("user:u1") == -1
    (resolved,) = engine.notifications("chargeback.resolved")
    assert resolved["data"]["passed_to_client_minor"] == 1


def test_sc11_one_payment_for_two_milestones_settles_both(sqlite_engine: Engine) -> None:
    engine = Driver(sqlite_engine)
    _open_contract(engine, ("m1", 30000), ("m2", 20000))
    _charge_back(engine, CHARGE)
    (frozen,) = engine.notifications("escrow.frozen")
    assert frozen["data"]["milestone_ids"] == ["m1", "m2"]
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("escrow:m1") == 0
    assert engine.balance("escrow:m2") == 0
    assert engine.balance("platform:fees") == 0
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE


def test_sc11_client_lost_returns_a_and_passes_f_to_the_client(engine: Driver) -> None:
    _charge_back(engine)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_lost")
    assert engine.balance("platform:chargebacks") == 0
    assert engine.balance("user:u1") == -ISSUER_FEE
    assert engine.balance("escrow:m1") == AMOUNT
    assert engine.frozen("m1") == (False, False)
    (unfrozen,) = engine.notifications("escrow.unfrozen")
    assert unfrozen["recipients"] == ["user:u1", "user:u2"]
    assert unfrozen["data"]["milestone_ids"] == ["m1"]
    (resolved,) = engine.notifications("chargeback.resolved")
    assert resolved["data"]["outcome"] == "client_lost"
    assert resolved["data"]["passed_to_client_minor"] == ISSUER_FEE
    assert _release(engine).status == "applied"


def test_sc11_resolving_twice_is_invalid_state(engine: Driver) -> None:
    _charge_back(engine)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_lost")
    again = engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert engine.balance("user:u1") == -ISSUER_FEE


def test_sc11_a_second_open_chargeback_on_the_payment_is_invalid_state(engine: Driver) -> None:
    _charge_back(engine, 1000)
    second = engine.send(
        "chargeback.opened",
        chargeback_id="cb2",
        payment_id="p1",
        amount_minor=1000,
        issuer_fee_minor=0,
    )
    assert (second.status, second.reason) == ("rejected", "invalid_state")
    assert engine.balance("platform:chargebacks") == -(1000 + ISSUER_FEE)


def test_sc11_unknown_payment_or_chargeback_is_an_unknown_subject(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.send(
            "chargeback.opened",
            chargeback_id="cb1",
            payment_id="p-x",
            amount_minor=100,
            issuer_fee_minor=0,
        )
    with pytest.raises(UnknownSubject):
        engine.send("chargeback.resolved", chargeback_id="cb-x", outcome="client_won")


def test_sc11_won_chargeback_claws_back_the_milestones_points(engine: Driver) -> None:
    """SC-10 rides along: the settlement is a refund of the milestone."""
    engine.send("points.awarded", user_id="u2", points=100, milestone_id="m1")
    _charge_back(engine, 13000)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("points:u2", "PTS") == 75


def test_sc12_chargeback_on_work_accepted_in_full_flags_the_client(engine: Driver) -> None:
    _release(engine)
    _charge_back(engine)
    (flagged,) = engine.notifications("account.flagged")
    assert flagged["recipients"] == ["support"]
    assert flagged["data"] == {
        "user_id": "u1",
        "reason": "chargeback_on_accepted_work",
        "chargeback_id": "cb1",
    }


def test_sc12_chargeback_while_escrow_holds_money_flags_nobody(engine: Driver) -> None:
    _charge_back(engine)
    assert engine.notifications("account.flagged") == []


def test_sc11_addon_chargeback_won_takes_back_the_sale(sqlite_engine: Engine) -> None:
    engine = Driver(sqlite_engine)
    engine.send(
        "addon.purchased",
        addon_id="a1",
        user_id="u9",
        kind="profile_boost",
        payment_id="pa1",
        amount_minor=1500,
        currency="USD",
    )
    opened = engine.send(
        "chargeback.opened",
        chargeback_id="cb1",
        payment_id="pa1",
        amount_minor=1500,
        issuer_fee_minor=ISSUER_FEE,
    )
    assert opened.status == "applied"
    assert engine.notifications("escrow.frozen") == []
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("platform:addons") == 0
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    refused = engine.send("addon.refund_requested", addon_id="a1")
    assert (refused.status, refused.reason) == ("rejected", "invalid_state")
    assert engine.balance("user:u9") == 0


@pytest.mark.postgres
def test_sc11_settlement_on_postgresql(pg_engine: Engine) -> None:
    """The freeze, the settlement from a released milestone and the audit, on PostgreSQL."""
    from ledger import audit

    engine = Driver(pg_engine)
    _open_contract(engine, ("m1", AMOUNT))
    _release(engine)
    _charge_back(engine)
    engine.send("chargeback.resolved", chargeback_id="cb1", outcome="client_won")
    assert engine.balance("platform:chargebacks") == -ISSUER_FEE
    assert engine.balance("user:u2") == 0
    with pg_engine.begin() as conn:
        assert audit(conn).ok
