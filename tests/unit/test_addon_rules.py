"""SC-9: add-on refunds, judged at the request's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from messages.inbound import AddonPurchased
from policy.outcomes import Rejected
from policy.rules.addons import purchased_addon, refund_addon, start_addon
from policy.state import AddonState

BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WINDOW_HOURS = 24


def _addon() -> AddonState:
    data = AddonPurchased(
        addon_id="a1",
        user_id="u1",
        kind="profile_boost",
        payment_id="pa1",
        amount_minor=1500,
        currency="USD",
    )
    return purchased_addon(data, BOUGHT)


def test_sc9_refund_within_24_hours_before_start_is_full() -> None:
    refunded = refund_addon(_addon(), BOUGHT + timedelta(hours=23), WINDOW_HOURS)
    assert isinstance(refunded, AddonState)
    assert refunded.refunded_at == BOUGHT + timedelta(hours=23)
    assert refunded.amount_minor == 1500


def test_sc9_window_is_inclusive_of_the_24th_hour() -> None:
    at_edge = refund_addon(_addon(), BOUGHT + timedelta(hours=24), WINDOW_HOURS)
    assert isinstance(at_edge, AddonState)


def test_sc9_one_microsecond_late_is_window_expired() -> None:
    late = BOUGHT + timedelta(hours=24, microseconds=1)
    assert refund_addon(_addon(), late, WINDOW_HOURS) == Rejected("window_expired")


def test_sc9_started_addon_is_refused_with_addon_started() -> None:
    started = start_addon(_addon(), BOUGHT + timedelta(hours=1))
    assert isinstance(started, AddonState)
    refused = refund_addon(started, BOUGHT + timedelta(hours=2), WINDOW_HOURS)
    assert refused == Rejected("addon_started")


def test_sc9_started_and_expired_names_the_start() -> None:
    started = start_addon(_addon(), BOUGHT + timedelta(hours=1))
    assert isinstance(started, AddonState)
    refused = refund_addon(started, BOUGHT + timedelta(days=3), WINDOW_HOURS)
    assert refused == Rejected("addon_started")


def test_sc9_request_made_before_a_later_start_is_refunded() -> None:
    """The start event was handled first, but the request happened before it."""
    started = start_addon(_addon(), BOUGHT + timedelta(hours=5))
    assert isinstance(started, AddonState)
    refunded = refund_addon(started, BOUGHT + timedelta(hours=4), WINDOW_HOURS)
    assert isinstance(refunded, AddonState)


def test_sc9_second_refund_is_invalid_state() -> None:
    refunded = refund_addon(_addon(), BOUGHT, WINDOW_HOURS)
    assert isinstance(refunded, AddonState)
    again = refund_addon(refunded, BOUGHT + timedelta(hours=1), WINDOW_HOURS)
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"


def test_sc9_refunded_or_running_addon_cannot_start() -> None:
    refunded = refund_addon(_addon(), BOUGHT, WINDOW_HOURS)
    assert isinstance(refunded, AddonState)
    refused = start_addon(refunded, BOUGHT + timedelta(hours=1))
    assert isinstance(refused, Rejected)
    assert refused.reason == "invalid_state"
    running = start_addon(_addon(), BOUGHT)
    assert isinstance(running, AddonState)
    twice = start_addon(running, BOUGHT + timedelta(hours=1))
    assert isinstance(twice, Rejected)
    assert twice.reason == "invalid_state"
