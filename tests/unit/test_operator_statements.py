"""The running balance of a statement, entry by entry, holds included (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger import Entry, TransferCode, TransferKind
from workers.operator.entries import cause_of
from workers.operator.errors import UsageProblem
from workers.operator.statements import available_change, check_account_name

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _entry(kind: TransferKind, amount: int, pending_id: str | None = None) -> Entry:
    return Entry(
        transfer_id=f"t-{kind.value}",
        kind=kind,
        debit="user:u1",
        credit="external:bank",
        amount_minor=amount,
        currency="USD",
        code=TransferCode.WITHDRAWAL,
        event_id="evt-1",
        occurred_at=AT,
        pending_id=pending_id,
    )


def test_a_hold_leaves_the_debit_side_at_once_and_the_credit_side_only_when_posted() -> None:
    hold = _entry(TransferKind.PENDING, 10000)
    post = _entry(TransferKind.POST_PENDING, 10000, pending_id=hold.transfer_id)
    holds = {hold.transfer_id: 10000}
    assert [available_change(e, "user:u1", holds) for e in (hold, post)] == [-10000, 0]
    assert [available_change(e, "external:bank", holds) for e in (hold, post)] == [0, 10000]


def test_posting_part_of_a_hold_returns_the_rest() -> None:
    hold = _entry(TransferKind.PENDING, 10000)
    post = _entry(TransferKind.POST_PENDING, 6000, pending_id=hold.transfer_id)
    assert available_change(post, "user:u1", {hold.transfer_id: 10000}) == 4000


def test_a_voided_hold_returns_whole() -> None:
    hold = _entry(TransferKind.PENDING, 10000)
    void = _entry(TransferKind.VOID_PENDING, 10000, pending_id=hold.transfer_id)
    holds = {hold.transfer_id: 10000}
    assert available_change(void, "user:u1", holds) == 10000
    assert available_change(void, "external:bank", holds) == 0


def test_a_posted_transfer_moves_both_sides() -> None:
    posted = _entry(TransferKind.POSTED, 2500)
    assert available_change(posted, "user:u1", {}) == -2500
    assert available_change(posted, "external:bank", {}) == 2500


def test_a_deadline_effect_answers_to_its_deadline_not_to_the_tick() -> None:
    assert cause_of("deadline:dispute.overdue:d1#1", "tick-7") == "deadline:dispute.overdue:d1"
    assert cause_of("evt-3#2", "evt-3") == "evt-3"


@pytest.mark.parametrize("name", ["alice", "bank:u1", "user:"])
def test_a_name_no_account_can_have_is_a_usage_problem(name: str) -> None:
    with pytest.raises(UsageProblem, match="an account is user:<id>, escrow:<milestone_id>"):
        check_account_name(name)
