"""CC-5 through `apply_event`: a withdrawal is held from the balance at once and scheduled 3
to 5 business days after the request's day; one above the balance is refused."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from ledger import Book
from messages import parse_event
from policy import rows
from policy.apply import ApplyResult, apply_event
from policy.config import PolicySet, load_policies
from policy.state import WithdrawalState
from policy.tables import outbox, withdrawals
from store.pipelining import deferred_writes

PAID = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
FRIDAY_EVENING = datetime(2026, 3, 6, 21, 30, tzinfo=UTC)
EARNED = 50_000
EXPERT = "user:expert"


class Driver:
    """Feeds events through `apply_event`, one transaction each, and reads the results."""

    def __init__(self, engine: Engine, policies: PolicySet | None = None) -> None:
        self.engine = engine
        self.policies = policies or load_policies(default="cadcrowd")
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def send(
        self, type_: str, at: datetime, event_id: str | None = None, **data: Any
    ) -> ApplyResult:
        with self._lock:
            event_id = event_id or f"evt-{next(self._ids)}"
        body = {
            "event_id": event_id,
            "type": type_,
            "occurred_at": at.isoformat(),
            "schema_version": 1,
            "data": data,
        }
        with self.engine.begin() as conn, deferred_writes(conn):
            return apply_event(conn, parse_event(body), self.policies)

    def earn(self, amount: int = EARNED) -> None:
        """The expert earns `amount` on a paid hourly invoice (CC-1)."""
        self.send(
            "contract.opened",
            PAID - timedelta(days=7),
            contract_id="c1",
            kind="hourly",
            client_id="client",
            creator_id="expert",
            currency="USD",
            policy="cadcrowd",
        )
        paid = self.send(
            "hourly.invoice_paid",
            PAID,
            contract_id="c1",
            invoice_id="inv1",
            period_start="2026-02-23",
            payment_id="pay1",
            amount_minor=amount,
            processor_fee_minor=0,
        )
        assert paid.status == "applied"

    def withdraw(
        self,
        amount: int,
        at: datetime = FRIDAY_EVENING,
        withdrawal_id: str = "w1",
        currency: str = "USD",
        event_id: str | None = None,
    ) -> ApplyResult:
        return self.send(
            "withdrawal.requested",
            at,
            event_id=event_id,
            withdrawal_id=withdrawal_id,
            user_id="expert",
            amount_minor=amount,
            currency=currency,
        )

    def available(self, name: str = EXPERT, currency: str = "USD") -> int:
        with self.engine.begin() as conn:
            return Book(conn).balance(name, currency).available_minor

    def notifications(self, type_: str) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            bodies = conn.execute(
                select(outbox.c.body).where(outbox.c.type == type_).order_by(outbox.c.seq)
            )
            return [json.loads(body) for (body,) in bodies]


@pytest.fixture
def engine(sqlite_engine: Engine) -> Driver:
    driver = Driver(sqlite_engine)
    driver.earn()
    return driver


def test_cc5_a_withdrawal_on_a_friday_evening_is_held_and_paid_out_wednesday_to_friday(
    engine: Driver,
) -> None:
    """CC-5: the amount leaves the balance at once; 3 to 5 business days after Friday."""
    assert engine.withdraw(20_000).status == "applied"
    assert engine.available() == EARNED - 20_000
    (scheduled,) = engine.notifications("withdrawal.scheduled")
    assert scheduled["recipients"] == [EXPERT]
    assert scheduled["data"] == {
        "withdrawal_id": "w1",
        "user_id": "expert",
        "currency": "USD",
        "amount_minor": 20_000,
        "earliest_on": "2026-03-11",
        "latest_on": "2026-03-13",
    }
    with engine.engine.begin() as conn:
        balance = Book(conn).balance(EXPERT, "USD")
        stored = rows.load(conn, withdrawals, WithdrawalState, "w1")
        report = Book(conn).balances()
    # Held as a pending payout, not yet posted to the bank.
    assert (balance.posted_minor, balance.pending_debits_minor) == (EARNED, 20_000)
    assert stored is not None
    assert stored.requested_at == FRIDAY_EVENING
    assert report[EXPERT] == {"USD": EARNED - 20_000}


def test_cc5_a_second_withdrawal_sees_the_reduced_balance(engine: Driver) -> None:
    """CC-5: the first hold counts against the second; above what is left is refused."""
    assert engine.withdraw(30_000, withdrawal_id="w1").status == "applied"
    refused = engine.withdraw(20_001, withdrawal_id="w2")
    assert (refused.status, refused.reason) == ("rejected", "insufficient_balance")
    (notice,) = engine.notifications("event.rejected")
    assert notice["recipients"] == [EXPERT]
    assert notice["data"] == {
        "event_id": refused.event_id,
        "event_type": "withdrawal.requested",
        "subject_id": "w2",
        "reason": "insufficient_balance",
    }
    assert engine.available() == 20_000
    assert engine.withdraw(20_000, withdrawal_id="w3").status == "applied"
    assert engine.available() == 0


def test_cc5_a_user_with_no_balance_withdraws_nothing_and_leaves_no_trace(
    engine: Driver,
) -> None:
    result = engine.send(
        "withdrawal.requested",
        FRIDAY_EVENING,
        withdrawal_id="w9",
        user_id="stranger",
        amount_minor=1,
        currency="USD",
    )
    assert result.reason == "insufficient_balance"
    with engine.engine.begin() as conn:
        assert "user:stranger" not in Book(conn).balances()
        assert rows.load(conn, withdrawals, WithdrawalState, "w9") is None


def test_cc5_a_balance_in_another_currency_does_not_pay_a_withdrawal(engine: Driver) -> None:
    result = engine.withdraw(100, currency="EUR")
    assert result.reason == "insufficient_balance"
    assert engine.available() == EARNED


def test_cc5_a_withdrawal_redelivered_or_repeated_is_held_once(engine: Driver) -> None:
    assert engine.withdraw(10_000, event_id="evt-w").status == "applied"
    assert engine.withdraw(10_000, event_id="evt-w").status == "duplicate"
    again = engine.withdraw(10_000, event_id="evt-w-again")
    assert (again.status, again.reason) == ("rejected", "invalid_state")
    assert engine.available() == EARNED - 10_000
    assert len(engine.notifications("withdrawal.scheduled")) == 1


def test_cc5_holidays_of_the_policy_move_the_payout_days(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    """CC-5 with `[calendar] holidays`: Monday 9 March off, Thursday 12 to Monday 16."""
    path = tmp_path / "policy.toml"
    path.write_text("[cadcrowd.calendar]\nholidays = [2026-03-09]\n", encoding="utf-8")
    engine = Driver(sqlite_engine, load_policies(path, default="cadcrowd"))
    engine.earn()
    engine.withdraw(1_000)
    (scheduled,) = engine.notifications("withdrawal.scheduled")
    assert (scheduled["data"]["earliest_on"], scheduled["data"]["latest_on"]) == (
        "2026-03-12",
        "2026-03-16",
    )


def test_cc5_a_late_published_withdrawal_is_scheduled_from_the_day_it_was_asked(
    engine: Driver,
) -> None:
    """Judged at `occurred_at`: asked Friday evening, delivered Monday after a tick."""
    engine.send("deadline.tick", FRIDAY_EVENING + timedelta(days=3))
    engine.withdraw(1_000, at=FRIDAY_EVENING)
    (scheduled,) = engine.notifications("withdrawal.scheduled")
    assert scheduled["data"]["earliest_on"] == "2026-03-11"
    assert scheduled["occurred_at"].startswith("2026-03-06T21:30:00")


@pytest.mark.postgres
def test_cc5_concurrent_withdrawals_never_take_more_than_the_balance(pg_engine: Engine) -> None:
    """CC-5 on PostgreSQL: eight withdrawals of 10,000 at once from 50,000: five are held."""
    engine = Driver(pg_engine)
    engine.earn()
    start = threading.Barrier(8, timeout=30)
    results: list[ApplyResult] = []
    errors: list[BaseException] = []

    def withdraw(number: int) -> None:
        try:
            start.wait()
            results.append(engine.withdraw(10_000, withdrawal_id=f"w{number}"))
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=withdraw, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    outcomes = sorted(result.reason or result.status for result in results)
    assert outcomes == ["applied"] * 5 + ["insufficient_balance"] * 3
    assert engine.available() == 0
