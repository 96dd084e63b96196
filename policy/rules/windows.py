"""The time limits of refunds and disputes, as instants, judged at each event's own time.

"Within N days of T" is up to and including T + N x 24 h (docs/policy.md, Time). Every window is
read from `PolicyConfig.windows_for(contract.client_jurisdiction)`, so SC-13's table can
extend it for a client's jurisdiction.
"""

from __future__ import annotations

from datetime import datetime

from messages.inbound import Approver
from messages.notifications import ReasonCode
from policy.config import Windows
from policy.state import TargetState
from scheduler.calendar import hourly_dispute_deadline, window_end


def release_dispute_end(
    released_at: datetime, closed_at: datetime | None, windows: Windows
) -> datetime | None:
    """SC-4: the last instant to dispute a released milestone, None while it has none.

    max(released_at + release_dispute_days, closed_at): while the contract is open the
    window stays open, so there is no end yet.
    """
    if closed_at is None:
        return None
    return max(window_end(released_at, days=windows.release_dispute_days), closed_at)


def invoice_dispute_end(invoice: TargetState, windows: Windows) -> datetime:
    """CC-8: the Friday 23:59:59 after the invoice's billing week, and no later than the
    dispute team's intake of invoices paid within the past `hourly_dispute_intake_days`."""
    if invoice.period_start is None:
        raise ValueError(f"invoice {invoice.target_id!r} has no billing period")
    return min(
        hourly_dispute_deadline(invoice.period_start, windows.hourly_dispute_days_after_period),
        window_end(invoice.paid_at, days=windows.hourly_dispute_intake_days),
    )


def approval_refusal(
    paid_at: datetime, at: datetime, approved_by: Approver, windows: Windows
) -> ReasonCode | None:
    """CC-3: the creator may approve within 180 days of the payment, support within 365."""
    if at <= window_end(paid_at, days=windows.expert_approval_days):
        return None
    if at <= window_end(paid_at, days=windows.support_approval_days):
        return None if approved_by == "support" else "needs_support"
    return "window_expired"


def in_cooling_off(paid_at: datetime, at: datetime, windows: Windows) -> bool:
    """SC-13: within a jurisdiction's cooling-off days of the funding (none by default)."""
    return windows.cooling_off_days > 0 and at <= window_end(paid_at, days=windows.cooling_off_days)
