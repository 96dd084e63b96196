"""SC-10 through the engine: points awards, cash-outs and their reversal by a fraud claim."""

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


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.policies = load_policies()
        self._ids = itertools.count(1)

    def send(self, type_: str, data: dict[str, Any], at: datetime = AT) -> ApplyResult:
        body = {
            "event_id": f"evt-{next(self._ids)}",
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn:
            return apply_event(conn, parse_event(body), self.policies)

    def points(self, user_id: str) -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(f"points:{user_id}", "PTS").available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(select(outbox.c.body).where(outbox.c.type == type_))
            return [json.loads(body) for (body,) in bodies]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    return Driver(sqlite_engine)


def test_sc10_activity_points_are_awarded_to_the_users_points_account(engine: Driver) -> None:
    assert engine.send("points.awarded", {"user_id": "u2", "points": 120}).status == "applied"
    engine.send("points.awarded", {"user_id": "u2", "points": 30})
    assert engine.points("u2") == 150


def test_sc10_award_for_an_unknown_milestone_is_an_unknown_subject(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.send("points.awarded", {"user_id": "u2", "points": 10, "milestone_id": "m-x"})
    assert engine.points("u2") == 0


def test_sc10_cashout_takes_the_points(engine: Driver) -> None:
    engine.send("points.awarded", {"user_id": "u2", "points": 100})
    paid = engine.send("points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 60})
    assert paid.status == "applied"
    assert engine.points("u2") == 40


def test_sc10_cashout_beyond_the_balance_is_insufficient_balance(engine: Driver) -> None:
    engine.send("points.awarded", {"user_id": "u2", "points": 100})
    refused = engine.send(
        "points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 101}
    )
    assert (refused.status, refused.reason) == ("rejected", "insufficient_balance")
    (notice,) = engine.notifications("event.rejected")
    assert notice["recipients"] == ["user:u2"]
    assert notice["data"]["event_type"] == "points.cashout_paid"
    assert notice["data"]["reason"] == "insufficient_balance"
    assert engine.points("u2") == 100


def test_sc10_fraud_claim_reverses_a_cashout_once(engine: Driver) -> None:
    engine.send("points.awarded", {"user_id": "u2", "points": 100})
    engine.send("points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 100})
    later = AT + timedelta(days=3)
    claim = {"cashout_id": "co1", "fraud_claim_id": "fc-9"}
    assert engine.send("points.cashout_reversed", claim, later).status == "applied"
    assert engine.points("u2") == 100
    again = engine.send("points.cashout_reversed", {**claim, "fraud_claim_id": "fc-10"}, later)
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert engine.points("u2") == 100


def test_sc10_reversal_of_an_unknown_cashout_is_an_unknown_subject(engine: Driver) -> None:
    with pytest.raises(UnknownSubject):
        engine.send("points.cashout_reversed", {"cashout_id": "co-x", "fraud_claim_id": "fc-1"})


def test_sc10_the_same_cashout_id_twice_is_invalid_state(engine: Driver) -> None:
    engine.send("points.awarded", {"user_id": "u2", "points": 100})
    engine.send("points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 10})
    again = engine.send("points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 10})
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert engine.points("u2") == 90


@pytest.mark.postgres
def test_sc10_concurrent_cashouts_never_spend_the_same_points_twice(pg_engine: Engine) -> None:
    """Both ask for the whole balance at once: the second waits for the first and is refused."""
    from concurrent.futures import ThreadPoolExecutor

    engine = Driver(pg_engine)
    engine.send("points.awarded", {"user_id": "u2", "points": 100})

    def cash_out(cashout_id: str) -> ApplyResult:
        body = {
            "event_id": f"evt-{cashout_id}",
            "type": "points.cashout_paid",
            "occurred_at": AT.isoformat(),
            "schema_version": 1,
            "data": {"cashout_id": cashout_id, "user_id": "u2", "points": 100},
        }
        with pg_engine.begin() as conn:
            return apply_event(conn, parse_event(body), engine.policies)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(cash_out, ["co1", "co2", "co3", "co4"]))
    assert sorted(result.status for result in results) == ["applied"] + ["rejected"] * 3
    assert engine.points("u2") == 0
