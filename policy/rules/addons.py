"""Add-ons (SC-9): a profile boost or a featured placement, bought outright.

A refund request is honoured in full, to the buyer's balance, when it comes within the
refund window of the purchase (inclusive) and before the add-on started running: once it
ran, its impressions cannot be given back. Every rule is judged at the request's own time.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from messages.inbound import AddonPurchased
from policy.outcomes import Rejected
from policy.state import AddonState


def purchased_addon(data: AddonPurchased, at: datetime) -> AddonState:
    return AddonState(
        addon_id=data.addon_id,
        user_id=data.user_id,
        kind=data.kind,
        payment_id=data.payment_id,
        currency=data.currency,
        amount_minor=data.amount_minor,
        purchased_at=at,
        started_at=None,
        refunded_at=None,
    )


def start_addon(addon: AddonState, at: datetime) -> AddonState | Rejected:
    """The add-on began running; a refunded or already running one cannot start again."""
    if addon.refunded_at is not None:
        return Rejected("invalid_state", "the add-on was refunded")
    if addon.started_at is not None:
        return Rejected("invalid_state", "the add-on is already running")
    return dataclasses.replace(addon, started_at=at)


def refund_addon(addon: AddonState, at: datetime, window_hours: int) -> AddonState | Rejected:
    """The refunded add-on, or why the request at `at` is refused (SC-9).

    A start recorded later than the request does not count against it: the request is judged
    by when it was made, even when the start event was handled first.
    """
    if addon.refunded_at is not None:
        return Rejected("invalid_state", "the add-on was already refunded")
    if addon.started_at is not None and addon.started_at <= at:
        return Rejected("addon_started")
    if at > addon.purchased_at + timedelta(hours=window_hours):
        return Rejected("window_expired")
    return dataclasses.replace(addon, refunded_at=at)
