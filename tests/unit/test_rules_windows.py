"""Time limits as instants (`policy.rules.windows`, `policy.rules.reviews`): SC-4, SC-13,
CC-3, CC-7, CC-8, ends included, judged at the event's own time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from messages.inbound import Approver
from messages.notifications import ReasonCode
from policy.config import Windows, load_policies
from policy.rules.reviews import review_window_end
from policy.rules.windows import (
    approval_refusal,
    in_cooling_off,
    invoice_dispute_end,
    release_dispute_end,
)
from policy.state import TargetState

POLICIES = load_policies()
SPECTRUM = POLICIES.get("spectrum")
WINDOWS = SPECTRUM.windows
PAID = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def _invoice(period_start: date, paid_at: datetime) -> TargetState:
    return TargetState(
        target_id="inv-1",
        kind="invoice",
        contract_id="c1",
        payment_id="p1",
        currency="USD",
        amount_minor=40000,
        client_fee_minor=0,
        creator_fee_minor=0,
        processor_fee_minor=0,
        paid_at=paid_at,
        period_start=period_start,
        work_started_at=None,
        released_at=paid_at,
        released_minor=40000,
        refunded_minor=0,
        client_fee_reversed_minor=0,
        creator_fee_reversed_minor=0,
        creator_fee_charged_minor=0,
        clawed_back_minor=0,
        status="paid",
        frozen=False,
        final_at=None,
    )


def test_sc4_window_stays_open_while_the_contract_is_open() -> None:
    """SC-4: max(released_at + 30 days, closed_at) has no end before the contract closes."""
    assert release_dispute_end(PAID, None, WINDOWS) is None


def test_sc4_window_is_30_days_after_release_when_the_contract_closed_before() -> None:
    closed = PAID + 2 * DAY
    assert release_dispute_end(PAID, closed, WINDOWS) == PAID + 30 * DAY


def test_sc4_window_is_the_close_when_the_contract_closed_later() -> None:
    """SC-4: "or, if the whole project hasn't closed yet, whichever is longer"."""
    closed = PAID + 45 * DAY
    assert release_dispute_end(PAID, closed, WINDOWS) == closed


@pytest.mark.parametrize(
    ("after_payment", "approved_by", "expected"),
    [
        (180 * DAY, "creator", None),  # day 180, to the instant: still the creator's
        (180 * DAY + SECOND, "creator", "needs_support"),
        (180 * DAY + SECOND, "support", None),
        (365 * DAY, "support", None),
        (365 * DAY + SECOND, "support", "window_expired"),
        (365 * DAY + SECOND, "creator", "window_expired"),
    ],
)
def test_cc3_approval_windows_180_and_365_days_from_the_payment(
    after_payment: timedelta, approved_by: Approver, expected: ReasonCode | None
) -> None:
    """CC-3: the creator within 180 days, support alone from day 181 to 365, no one after."""
    assert approval_refusal(PAID, PAID + after_payment, approved_by, WINDOWS) == expected


def test_cc8_invoice_dispute_deadline_is_the_friday_after_its_billing_week() -> None:
    """CC-8: week Mon 2 Mar - Sun 8 Mar 2026: disputes until Fri 13 Mar 23:59:59 UTC."""
    invoice = _invoice(date(2026, 3, 2), datetime(2026, 3, 9, 1, 0, tzinfo=UTC))
    end = invoice_dispute_end(invoice, WINDOWS)
    assert end.date() == date(2026, 3, 13)
    assert end.weekday() == 4
    assert (end.hour, end.minute, end.second) == (23, 59, 59)


def test_cc8_dispute_team_takes_invoices_paid_within_30_days_even_with_a_longer_window() -> None:
    """CC-8: a jurisdiction may extend the Friday deadline, not the team's 30-day intake."""
    windows = WINDOWS.model_copy(update={"hourly_dispute_days_after_period": 90})
    paid = datetime(2026, 3, 9, 1, 0, tzinfo=UTC)
    assert invoice_dispute_end(_invoice(date(2026, 3, 2), paid), windows) == paid + 30 * DAY


def test_sc13_cooling_off_applies_only_where_the_windows_grant_one() -> None:
    """SC-13: 14 days from funding in DE, ends included; none under the preset's default."""
    german = SPECTRUM.windows_for("DE")
    assert in_cooling_off(PAID, PAID + 14 * DAY, german)
    assert not in_cooling_off(PAID, PAID + 14 * DAY + SECOND, german)
    assert not in_cooling_off(PAID, PAID + SECOND, SPECTRUM.windows_for("US"))


def test_cc7_review_window_closes_14_days_after_the_contract() -> None:
    """CC-7: reviews until closed_at + 14 days."""
    windows: Windows = POLICIES.get("cadcrowd").windows
    assert review_window_end(PAID, windows) == PAID + 14 * DAY
