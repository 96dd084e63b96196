"""SC-9 through the engine: add-on purchase, start and refund request on SQLite."""

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

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)

    def send(self, type_: str, data: dict[str, Any], at: datetime) -> ApplyResult:
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn:
            return apply_event(conn, parse_event(body), self.policies)

    def balance(self, name: str, currency: str = "USD") -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, currency).available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(select(outbox.c.body).where(outbox.c.type == type_))
            return [json.loads(body) for (body,) in bodies]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def _buy(engine: Driver, addon_id: str = "a1", amount: int = 1500) -> None:
    data = {
        "addon_id": addon_id,
        "user_id": "u1",
        "kind": "profile_boost",
        "payment_id": f"pay-{addon_id}",
        "amount_minor": amount,
        "currency": "USD",
    }
    assert engine.send("addon.purchased", data, BOUGHT).status == "applied"


def test_sc9_purchase_books_revenue_in_platform_addons(engine: Driver) -> None:
    _buy(engine)
    assert engine.balance("platform:addons") == 1500
    assert engine.balance("user:u1") == 0


def test_sc9_refund_within_24_hours_goes_to_the_buyers_balance(engine: Driver) -> None:
    _buy(engine)
    at = BOUGHT + timedelta(hours=24)
    assert engine.send("addon.refund_requested", {"addon_id": "a1"}, at).status == "applied"
    assert engine.balance("user:u1") == 1500
    assert engine.balance("platform:addons") == 0
    (refunded,) = engine.notifications("addon.refunded")
    assert refunded["recipients"] == ["user:u1"]
    assert refunded["data"] == {
        "addon_id": "a1",
        "user_id": "u1",
        "currency": "USD",
        "amount_minor": 1500,
    }


def test_sc9_refund_after_start_is_rejected_addon_started(engine: Driver) -> None:
    _buy(engine)
    engine.send("addon.started", {"addon_id": "a1"}, BOUGHT + timedelta(minutes=5))
    result = engine.send("addon.refund_requested", {"addon_id": "a1"}, BOUGHT + timedelta(hours=1))
    assert (result.status, result.reason) == ("rejected", "addon_started")
    (rejected,) = engine.notifications("addon.refund_rejected")
    assert rejected["recipients"] == ["user:u1"]
    assert rejected["data"]["reason"] == "addon_started"
    assert engine.balance("platform:addons") == 1500
    assert engine.balance("user:u1") == 0


def test_sc9_refund_after_24_hours_is_rejected_window_expired(engine: Driver) -> None:
    _buy(engine)
    late = BOUGHT + timedelta(hours=24, seconds=1)
    result = engine.send("addon.refund_requested", {"addon_id": "a1"}, late)
    assert (result.status, result.reason) == ("rejected", "window_expired")
    assert engine.notifications("addon.refund_rejected")[0]["data"]["reason"] == "window_expired"
    assert engine.balance("user:u1") == 0


def test_sc9_second_refund_request_moves_nothing(engine: Driver) -> None:
    _buy(engine)
    engine.send("addon.refund_requested", {"addon_id": "a1"}, BOUGHT)
    again = engine.send("addon.refund_requested", {"addon_id": "a1"}, BOUGHT + timedelta(hours=1))
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert engine.balance("user:u1") == 1500


def test_sc9_unknown_addon_is_an_unknown_subject(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.send("addon.refund_requested", {"addon_id": "nope"}, BOUGHT)
    with pytest.raises(UnknownSubject):
        engine.send("addon.started", {"addon_id": "nope"}, BOUGHT)


def test_sc9_addon_id_bought_twice_is_invalid_state(engine: Driver) -> None:
    _buy(engine)
    data = {
        "addon_id": "a1",
        "user_id": "u1",
        "kind": "featured_placement",
        "payment_id": "pay-other",
        "amount_minor": 900,
        "currency": "USD",
    }
    result = engine.send("addon.purchased", data, BOUGHT)
    assert (result.status, result.reason) == ("rejected", "invalid_state")
    assert engine.balance("platform:addons") == 1500
