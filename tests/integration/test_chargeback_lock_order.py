"""SC-11 on PostgreSQL: two won chargebacks on contracts whose users swap roles, resolved at
the same moment, do not deadlock.

A won chargeback is settled by one refund per milestone the charge paid, each followed by its
SC-10 points claw-back, and then by the shortfall the client gives back: several postings,
each locking its accounts in id order, so several lock orders. Resolved side by side, the
settlement on c1 held ben (the creator it clawed back from) and waited for ana (the client
short of it) while the one on c2 held ana and waited for ben; with points awarded on two
milestones of each payment, each held one awardee's points and waited for the other's. Either
way PostgreSQL broke the cycle only after its 1 s `deadlock_timeout`. The settlement now locks
the users' and the awardees' accounts before its first posting.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_driver import Driver, send_side_by_side
from sqlalchemy import Engine

from ledger import Book
from policy.handlers import chargebacks

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Long enough for both settlements to reach their next posting when nothing holds them apart;
# short enough that a settlement held back by the other's locks does not wait long for it.
MEET_TIMEOUT_S = 1.0
ISSUER_FEE = 1500


def _send_all(driver: Driver, steps: Sequence[tuple[str, dict[str, Any]]]) -> None:
    for step, (type_, data) in enumerate(steps):
        result = driver.send(type_, at=T0 + timedelta(hours=step), **data)
        assert result.status == "applied", (type_, result)


def _opened(number: int, client: str, creator: str) -> tuple[str, dict[str, Any]]:
    return (
        "contract.opened",
        {
            "contract_id": f"c{number}",
            "kind": "fixed",
            "client_id": client,
            "creator_id": creator,
            "currency": "USD",
        },
    )


def _funded(number: int, milestone: str, amount_minor: int) -> tuple[str, dict[str, Any]]:
    return (
        "milestone.funded",
        {
            "contract_id": f"c{number}",
            "milestone_id": milestone,
            "payment_id": f"pay{number}",
            "amount_minor": amount_minor,
            "processor_fee_minor": 0,
        },
    )


def _charged_back(number: int, amount_minor: int) -> tuple[str, dict[str, Any]]:
    return (
        "chargeback.opened",
        {
            "chargeback_id": f"cb{number}",
            "payment_id": f"pay{number}",
            "amount_minor": amount_minor,
            "issuer_fee_minor": ISSUER_FEE,
        },
    )


def _refunded_after_release(driver: Driver, number: int, client: str, creator: str) -> None:
    """Contract c<n>: milestone m<n> of 500.00 released, 100.00 of it refunded to the client's
    balance, then the whole 520.00 charge taken back: the settlement refunds the 400.00 left,
    clawed back from the creator, and takes the 104.00 refunded before from the client."""
    contract, milestone = f"c{number}", f"m{number}"
    _send_all(
        driver,
        [
            _opened(number, client, creator),
            _funded(number, milestone, 50000),
            (
                "milestone.released",
                {"contract_id": contract, "milestone_id": milestone, "released_by": "client"},
            ),
            (
                "refund.approved",
                {
                    "contract_id": contract,
                    "target_id": milestone,
                    "amount_minor": 10000,
                    "approved_by": "creator",
                },
            ),
            _charged_back(number, 52000),
        ],
    )


def _two_milestones_with_points(driver: Driver, number: int, awardees: tuple[str, str]) -> None:
    """Contract c<n> between ana and ben: milestones m<n>a and m<n>b of 250.00 each, paid by one
    charge, points awarded on each to one of `awardees`, then the whole charge taken back."""
    client, creator = ("ana", "ben") if number == 1 else ("ben", "ana")
    steps = [_opened(number, client, creator)]
    for suffix in "ab":
        steps.append(_funded(number, f"m{number}{suffix}", 25000))
    for suffix, awardee in zip("ab", awardees, strict=True):
        steps.append(
            (
                "points.awarded",
                {"user_id": awardee, "points": 100, "milestone_id": f"m{number}{suffix}"},
            )
        )
    steps.append(_charged_back(number, 52000))
    _send_all(driver, steps)


def _resolve_together(driver: Driver, monkeypatch: pytest.MonkeyPatch) -> dict[int, Any]:
    """Resolve cb1 and cb2 (client won) in two threads; each settlement waits, after each of
    its refunds, for the other to get there too: the moment postings in several steps would
    cross. One held back by the other's locks never arrives, and the first goes on alone
    once the wait times out."""
    meet = threading.Barrier(2, timeout=MEET_TIMEOUT_S)
    refund = chargebacks.refund

    def refund_then_meet(*args: Any, **kwargs: Any) -> Any:
        refunded = refund(*args, **kwargs)
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return refunded

    monkeypatch.setattr(chargebacks, "refund", refund_then_meet)
    return send_side_by_side(
        {
            number: functools.partial(
                driver.send,
                "chargeback.resolved",
                at=T0 + timedelta(days=3),
                chargeback_id=f"cb{number}",
                outcome="client_won",
            )
            for number in (1, 2)
        }
    )


def test_sc11_settlements_clawing_back_and_short_on_crossed_users_never_deadlock(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = Driver(pg_engine)
    _refunded_after_release(driver, 1, client="ana", creator="ben")
    _refunded_after_release(driver, 2, client="ben", creator="ana")

    assert _resolve_together(driver, monkeypatch) == {1: "applied", 2: "applied"}
    with pg_engine.begin() as conn:
        book = Book(conn)
        # Each user: as a creator, 460.00 released less 92.00 and 368.00 clawed back; as a
        # client, 104.00 refunded and given back.
        assert book.balance("user:ana", "USD").available_minor == 0
        assert book.balance("user:ben", "USD").available_minor == 0
        assert book.balance("platform:chargebacks", "USD").available_minor == -2 * ISSUER_FEE


def test_sc10_sc11_settlements_clawing_back_crossed_points_never_deadlock(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    driver = Driver(pg_engine)
    _two_milestones_with_points(driver, 1, awardees=("ana", "ben"))
    _two_milestones_with_points(driver, 2, awardees=("ben", "ana"))

    assert _resolve_together(driver, monkeypatch) == {1: "applied", 2: "applied"}
    with pg_engine.begin() as conn:
        book = Book(conn)
        assert book.balance("points:ana", "PTS").available_minor == 0
        assert book.balance("points:ben", "PTS").available_minor == 0
        for milestone in ("m1a", "m1b", "m2a", "m2b"):
            assert book.balance(f"escrow:{milestone}", "USD").available_minor == 0
