"""SC-3 on PostgreSQL: two partial-refund decisions on contracts whose users swap roles, decided
at the same moment, do not deadlock.

A partial refund of an unreleased milestone posts twice: the refund (escrow to the client),
then the release of the rest (escrow to the creator). Each posting locks its accounts in id
order, but two steps are two lock orders: decided side by side, the decision on c1 (client ana)
held ana and waited for ben while the one on c2 (client ben) held ben and waited for ana, and
PostgreSQL broke the cycle only after its 1 s `deadlock_timeout`, stalling both and every
event queued behind their accounts (the latency benchmark's tail, docs/performance.md). The
handler now locks the three accounts together before its first posting.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from engine_driver import Driver, send_side_by_side
from sqlalchemy import Engine

from ledger import Book
from ledger.registry import open_accounts
from policy.handlers import disputes

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
# Long enough for both decisions to reach their release when nothing holds them apart; short
# enough that a decision held back by the other's locks does not wait long for it.
MEET_TIMEOUT_S = 1.0


def _disputed_contract(driver: Driver, number: int, client: str, creator: str) -> None:
    """Contract c<n>, milestone m<n> funded with 500.00 and started, dispute r<n> open on it."""
    contract, milestone = f"c{number}", f"m{number}"
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "contract.opened",
            {"kind": "fixed", "client_id": client, "creator_id": creator, "currency": "USD"},
        ),
        (
            "milestone.funded",
            {
                "milestone_id": milestone,
                "payment_id": f"pay-{milestone}",
                "amount_minor": 50000,
                "processor_fee_minor": 0,
            },
        ),
        ("work.started", {"milestone_id": milestone, "evidence": "upload"}),
        (
            "refund.requested",
            {
                "request_id": f"r{number}",
                "target_id": milestone,
                "amount_minor": 50000,
                "reason": "not what we agreed",
            },
        ),
    ]
    for step, (type_, data) in enumerate(steps):
        result = driver.send(type_, at=T0 + timedelta(hours=step), contract_id=contract, **data)
        assert result.status == "applied", (type_, result)


@pytest.mark.parametrize(
    "users_have_accounts",
    [True, False],
    ids=["crossing on balance rows", "crossing on accounts being opened"],
)
def test_sc3_partial_refunds_on_contracts_sharing_users_decided_together_never_deadlock(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch, users_have_accounts: bool
) -> None:
    driver = Driver(pg_engine)
    _disputed_contract(driver, 1, client="ana", creator="ben")
    _disputed_contract(driver, 2, client="ben", creator="ana")
    if users_have_accounts:
        # Else the refunds open them: two transactions opening each other's accounts in two
        # steps wait for each other on the accounts' unique index instead.
        with pg_engine.begin() as conn:
            open_accounts(conn, [("user:ana", "USD"), ("user:ben", "USD")])

    # Each decision waits, between its refund and its release, for the other to get there
    # too: the moment two postings in two steps would cross. One held back by the other's
    # locks never arrives, and the first goes on alone once the wait times out.
    meet = threading.Barrier(2, timeout=MEET_TIMEOUT_S)
    release = disputes.release

    def release_once_both_refunded(*args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()
        return release(*args, **kwargs)

    monkeypatch.setattr(disputes, "release", release_once_both_refunded)
    outcomes = send_side_by_side(
        {
            number: functools.partial(
                driver.send,
                "dispute.resolved",
                at=T0 + timedelta(days=3),
                dispute_id=f"r{number}",
                contract_id=f"c{number}",
                outcome="partial_refund",
                refund_amount_minor=20000,
            )
            for number in (1, 2)
        }
    )

    assert outcomes == {1: "applied", 2: "applied"}
    with pg_engine.begin() as conn:
        book = Book(conn)
        # Each user: 208.00 refunded as a client (200.00 and its 4% client fee), 276.00
        # released as a creator (the other 300.00 less the 8% creator fee).
        assert book.balance("user:ana", "USD").available_minor == 20800 + 27600
        assert book.balance("user:ben", "USD").available_minor == 20800 + 27600
        assert book.balance("escrow:m1", "USD").available_minor == 0
        assert book.balance("escrow:m2", "USD").available_minor == 0
