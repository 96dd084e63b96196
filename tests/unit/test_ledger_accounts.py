"""Account kinds by name prefix, and the checks that refuse a transfer that could never post."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger import CurrencyMismatch, InvalidTransfer, Transfer, TransferCode, policy_for
from ledger.accounts import AccountPolicy
from ledger.transfers import check_transfer

GOOD = Transfer(
    transfer_id="evt-1#1",
    debit="external:card",
    credit="escrow:m1",
    amount_minor=10_000,
    currency="USD",
    code=TransferCode.FUNDING,
    event_id="evt-1",
    occurred_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("name", "may_go_negative", "hot"),
    [
        ("user:u1", True, False),
        ("escrow:m1", False, False),
        ("payout:u1", False, False),
        ("points:u2", True, False),
        ("platform:fees", True, True),
        ("platform:processor_fees", True, True),
        ("external:card", True, True),
        ("external:bank", True, True),
    ],
)
def test_the_prefix_decides_sign_and_hotness(name: str, may_go_negative: bool, hot: bool) -> None:
    assert policy_for(name) == AccountPolicy(may_go_negative=may_go_negative, hot=hot)


@pytest.mark.parametrize("name", ["wallet:u1", "user", "user:", ":u1", "", "x" * 199 + ":1"])
def test_an_unknown_or_malformed_account_name_is_an_invalid_transfer(name: str) -> None:
    with pytest.raises(InvalidTransfer):
        policy_for(name)


def test_a_well_formed_transfer_passes_the_checks() -> None:
    check_transfer(GOOD)


def test_an_aware_time_with_any_offset_is_accepted() -> None:
    check_transfer(
        replace(GOOD, occurred_at=GOOD.occurred_at.astimezone(timezone(timedelta(hours=2))))
    )


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 0},
        {"amount_minor": -5},
        {"amount_minor": True},
        {"amount_minor": 10.0},
        {"amount_minor": 2**63},
        {"transfer_id": ""},
        {"transfer_id": "t" * 201},
        {"event_id": ""},
        {"occurred_at": datetime(2026, 3, 2, 10, 0)},
        {"credit": "external:card"},
        {"currency": "usd"},
        {"currency": "EURO"},
        {"code": "funding"},
        {"debit": "bank:x"},
    ],
    ids=lambda change: next(iter(change)) + "=" + repr(next(iter(change.values())))[:20],
)
def test_a_transfer_that_could_never_post_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(InvalidTransfer):
        check_transfer(replace(GOOD, **change))  # type: ignore[arg-type]


def test_points_live_only_in_points_accounts_and_money_never_does() -> None:
    with pytest.raises(CurrencyMismatch):
        check_transfer(replace(GOOD, debit="platform:points", credit="points:u2"))
    with pytest.raises(CurrencyMismatch):
        check_transfer(replace(GOOD, currency="PTS"))
    check_transfer(replace(GOOD, debit="platform:points", credit="points:u2", currency="PTS"))
