"""CC-5 as a pure rule: a withdrawal's payout days and its balance check."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger import TransferCode
from messages.inbound import WithdrawalRequested
from policy.config import PolicyConfig, load_policies
from policy.outcomes import Rejected
from policy.rules.legs import Leg
from policy.rules.withdrawals import hold_leg, payout_window, request_withdrawal
from policy.state import WithdrawalState

POLICY = load_policies().get("cadcrowd")
FRIDAY_EVENING = datetime(2026, 3, 6, 21, 30, tzinfo=UTC)


def asked(amount_minor: int = 5_000) -> WithdrawalRequested:
    return WithdrawalRequested(
        withdrawal_id="w1", user_id="u1", amount_minor=amount_minor, currency="USD"
    )


def with_holidays(*days: date) -> PolicyConfig:
    return POLICY.model_copy(
        update={"calendar": POLICY.calendar.model_copy(update={"holidays": days})}
    )


def test_cc5_a_withdrawal_asked_on_a_friday_evening_pays_out_wednesday_to_friday() -> None:
    """CC-5: Friday is day 0, the weekend does not count: 3 business days is Wednesday."""
    window = payout_window(FRIDAY_EVENING, POLICY)
    assert (window.earliest_on, window.latest_on) == (date(2026, 3, 11), date(2026, 3, 13))


def test_cc5_the_request_day_is_the_utc_day() -> None:
    """CC-5: 23:59:59 Friday UTC is a Friday request, 00:00 Saturday a Saturday one; both
    count from Monday."""
    last_second = payout_window(datetime(2026, 3, 6, 23, 59, 59, tzinfo=UTC), POLICY)
    saturday = payout_window(datetime(2026, 3, 7, 0, 0, tzinfo=UTC), POLICY)
    assert last_second == saturday
    assert saturday.earliest_on == date(2026, 3, 11)


@pytest.mark.parametrize(
    ("asked_at", "earliest", "latest"),
    [
        (datetime(2026, 3, 2, 8, 0, tzinfo=UTC), date(2026, 3, 5), date(2026, 3, 9)),
        (datetime(2026, 3, 4, 8, 0, tzinfo=UTC), date(2026, 3, 9), date(2026, 3, 11)),
        (datetime(2026, 3, 8, 23, 0, tzinfo=UTC), date(2026, 3, 11), date(2026, 3, 13)),
    ],
)
def test_cc5_payout_days_for_each_kind_of_request_day(
    asked_at: datetime, earliest: date, latest: date
) -> None:
    """CC-5 from a Monday, a Wednesday and a Sunday."""
    window = payout_window(asked_at, POLICY)
    assert (window.earliest_on, window.latest_on) == (earliest, latest)


def test_cc5_a_holiday_moves_the_payout_days() -> None:
    """CC-5: with Monday 9 March a holiday, a Friday request pays out Thursday to Monday."""
    window = payout_window(FRIDAY_EVENING, with_holidays(date(2026, 3, 9)))
    assert (window.earliest_on, window.latest_on) == (date(2026, 3, 12), date(2026, 3, 16))


def test_cc5_the_hold_is_from_the_users_balance_to_the_bank() -> None:
    assert hold_leg(asked()) == Leg("user:u1", "external:bank", 5_000, TransferCode.WITHDRAWAL)


def test_cc5_a_withdrawal_of_all_that_is_available_is_scheduled() -> None:
    result = request_withdrawal(
        asked(5_000), FRIDAY_EVENING, POLICY, existing=None, available_minor=5_000
    )
    assert result == WithdrawalState(
        withdrawal_id="w1",
        user_id="u1",
        currency="USD",
        amount_minor=5_000,
        requested_at=FRIDAY_EVENING,
        earliest_on=date(2026, 3, 11),
        latest_on=date(2026, 3, 13),
    )


def test_cc5_a_withdrawal_above_the_available_balance_is_refused() -> None:
    """CC-5: one cent more than is available is `insufficient_balance`."""
    result = request_withdrawal(
        asked(5_001), FRIDAY_EVENING, POLICY, existing=None, available_minor=5_000
    )
    assert isinstance(result, Rejected)
    assert result.reason == "insufficient_balance"


def test_cc5_a_negative_balance_has_nothing_to_withdraw() -> None:
    result = request_withdrawal(
        asked(1), FRIDAY_EVENING, POLICY, existing=None, available_minor=-300
    )
    assert isinstance(result, Rejected)
    assert result.reason == "insufficient_balance"


def test_cc5_a_withdrawal_id_is_used_once() -> None:
    first = request_withdrawal(
        asked(), FRIDAY_EVENING, POLICY, existing=None, available_minor=10_000
    )
    assert isinstance(first, WithdrawalState)
    again = request_withdrawal(
        asked(), FRIDAY_EVENING, POLICY, existing=first, available_minor=10_000
    )
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"
