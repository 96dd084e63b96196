"""SC-10: the refund engine claws back the points awarded for a milestone, in proportion,
with SC-6's cumulative rounding; activity points stay; a balance may go negative."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from ledger import Book, TransferCode
from messages import parse_event
from policy import rows
from policy.apply import apply_event
from policy.config import PolicySet, load_policies
from policy.context import HandlerContext
from policy.refunds import refund
from policy.state import ContractState, PaymentState, TargetState
from policy.tables import contracts, outbox, payments, targets

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
AMOUNT = 30000


@pytest.fixture
def conn(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as connection, connection.begin():
        _funded_milestone(connection)
        yield connection


def _funded_milestone(conn: Connection) -> None:
    """A funded milestone m1 of $300 on contract c1, written straight to the tables."""
    rows.insert_row(
        conn,
        contracts,
        ContractState(
            contract_id="c1",
            kind="fixed",
            client_id="u1",
            creator_id="u2",
            currency="USD",
            policy="spectrum",
            client_jurisdiction=None,
            opened_at=AT,
            closed_at=None,
            paid_total_minor=AMOUNT,
            refunded_total_minor=0,
            reviews_hidden=False,
        ),
    )
    rows.insert_row(
        conn,
        targets,
        TargetState(
            target_id="m1",
            kind="milestone",
            contract_id="c1",
            payment_id="p1",
            currency="USD",
            amount_minor=AMOUNT,
            client_fee_minor=1200,
            creator_fee_minor=2400,
            processor_fee_minor=0,
            paid_at=AT,
            period_start=None,
            work_started_at=None,
            released_at=None,
            released_minor=0,
            refunded_minor=0,
            client_fee_reversed_minor=0,
            creator_fee_reversed_minor=0,
            creator_fee_charged_minor=0,
            clawed_back_minor=0,
            status="funded",
            frozen=False,
            final_at=None,
        ),
    )
    rows.insert_row(
        conn,
        payments,
        PaymentState(
            payment_id="p1",
            contract_id="c1",
            payer_id="u1",
            currency="USD",
            charge_total_minor=AMOUNT + 1200,
            processor_fee_minor=0,
            processor_fee_refunded_minor=0,
            deducted_from_client_minor=0,
            passed_through_minor=0,
            paid_at=AT,
        ),
    )
    context = _context(conn, load_policies(), "funding")
    context.post(
        [
            context.transfer("external:card", "escrow:m1", AMOUNT, "USD", TransferCode.FUNDING),
            context.transfer(
                "external:card", "platform:fees", 1200, "USD", TransferCode.CLIENT_FEE
            ),
        ]
    )


def _context(conn: Connection, policies: PolicySet, cause: str) -> HandlerContext:
    return HandlerContext(
        conn, policies, cause_id=cause, event_id=cause, event_type="test", occurred_at=AT
    )


def _send(conn: Connection, event_id: str, type_: str, data: dict[str, Any]) -> str:
    body = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": AT.isoformat(),
        "schema_version": 1,
        "data": data,
    }
    return apply_event(conn, parse_event(body), load_policies()).status


def _refund(conn: Connection, cause: str, amount: int) -> None:
    contract = rows.load(conn, contracts, ContractState, "c1", lock=True)
    target = rows.load(conn, targets, TargetState, "m1", lock=True)
    assert contract is not None
    assert target is not None
    refund(_context(conn, load_policies(), cause), contract, target, amount, cause="approved")


def _points(conn: Connection, user_id: str) -> int:
    return Book(conn).balance(f"points:{user_id}", "PTS").available_minor


def _clawed_back_notices(conn: Connection) -> list[dict[str, Any]]:
    bodies = conn.execute(select(outbox.c.body).where(outbox.c.type == "points.clawed_back"))
    return [json.loads(body)["data"] for (body,) in bodies]


def test_sc10_refunds_claw_back_milestone_points_with_cumulative_rounding(
    conn: Connection,
) -> None:
    """Thirds of the milestone claw back 33, 34 and 33 of 100 points: all of them, no more."""
    assert (
        _send(
            conn,
            "e-award",
            "points.awarded",
            {"user_id": "u2", "points": 100, "milestone_id": "m1"},
        )
        == "applied"
    )
    for number in range(3):
        _refund(conn, f"refund-{number}", AMOUNT // 3)
    assert [notice["points"] for notice in _clawed_back_notices(conn)] == [33, 34, 33]
    assert _clawed_back_notices(conn)[0] == {"user_id": "u2", "milestone_id": "m1", "points": 33}
    assert _points(conn, "u2") == 0


def test_sc10_activity_points_are_never_clawed_back(conn: Connection) -> None:
    _send(conn, "e-activity", "points.awarded", {"user_id": "u2", "points": 40})
    _send(conn, "e-award", "points.awarded", {"user_id": "u2", "points": 10, "milestone_id": "m1"})
    _refund(conn, "refund-all", AMOUNT)
    assert _points(conn, "u2") == 40


def test_sc10_points_already_cashed_out_leave_the_balance_negative(conn: Connection) -> None:
    _send(conn, "e-award", "points.awarded", {"user_id": "u2", "points": 100, "milestone_id": "m1"})
    _send(
        conn, "e-cash", "points.cashout_paid", {"cashout_id": "co1", "user_id": "u2", "points": 100}
    )
    _refund(conn, "refund-half", AMOUNT // 2)
    assert _points(conn, "u2") == -50


def test_sc10_award_after_a_refund_is_clawed_back_at_once(conn: Connection) -> None:
    """Points that arrive for a milestone already half refunded are half owed back."""
    _refund(conn, "refund-half", AMOUNT // 2)
    _send(conn, "e-award", "points.awarded", {"user_id": "u2", "points": 100, "milestone_id": "m1"})
    assert _points(conn, "u2") == 50
    assert _clawed_back_notices(conn) == [{"user_id": "u2", "milestone_id": "m1", "points": 50}]
