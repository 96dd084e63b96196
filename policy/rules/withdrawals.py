"""Withdrawals from a user's balance to their payment method (CC-5, both presets).

A withdrawal is paid out 3 to 5 business days (Monday to Friday, less the policy's holidays)
after the UTC day it was asked on, that day being day 0. Its amount leaves the balance when
it is asked: the book holds it as a pending transfer to the bank, so a second withdrawal sees
the reduced balance, and one above what is available is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from ledger.codes import TransferCode
from messages.inbound import WithdrawalRequested
from policy.config import PolicyConfig
from policy.outcomes import Rejected
from policy.rules.legs import Leg, user_account
from policy.state import WithdrawalState
from scheduler.calendar import add_business_days, day_of

EXTERNAL_BANK = "external:bank"


@dataclass(frozen=True, slots=True)
class PayoutWindow:
    earliest_on: date
    latest_on: date


def payout_window(requested_at: datetime, policy: PolicyConfig) -> PayoutWindow:
    """CC-5: the first and last day the payout may reach the payment method."""
    day = day_of(requested_at)
    holidays = policy.calendar.holidays
    return PayoutWindow(
        earliest_on=add_business_days(day, policy.windows.withdrawal_min_business_days, holidays),
        latest_on=add_business_days(day, policy.windows.withdrawal_max_business_days, holidays),
    )


def hold_leg(data: WithdrawalRequested) -> Leg:
    """The pending payout (docs/money-flows.md): the user's balance to the bank."""
    return Leg(
        user_account(data.user_id), EXTERNAL_BANK, data.amount_minor, TransferCode.WITHDRAWAL
    )


def request_withdrawal(
    data: WithdrawalRequested,
    at: datetime,
    policy: PolicyConfig,
    *,
    existing: WithdrawalState | None,
    available_minor: int,
) -> WithdrawalState | Rejected:
    """CC-5: the scheduled withdrawal, or why not.

    `existing` is a withdrawal already recorded under the id; `available_minor` what the
    user's balance in the withdrawal's currency has available before this withdrawal (other
    pending payouts already taken off).
    """
    if existing is not None:
        return Rejected("invalid_state", f"withdrawal {data.withdrawal_id} already exists")
    if data.amount_minor > available_minor:
        return Rejected(
            "insufficient_balance",
            f"{data.amount_minor} {data.currency} asked, {available_minor} available",
        )
    window = payout_window(at, policy)
    return WithdrawalState(
        withdrawal_id=data.withdrawal_id,
        user_id=data.user_id,
        currency=data.currency,
        amount_minor=data.amount_minor,
        requested_at=at,
        earliest_on=window.earliest_on,
        latest_on=window.latest_on,
    )
