"""Which function handles which inbound type: the one table `apply_event` dispatches on.

Every inbound type of `messages.inbound` has exactly one entry, and every entry is an inbound
type (tests/unit/test_handler_table.py). What each kind of deadline fires is `policy.ticks`'
table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from policy.context import HandlerContext
from policy.handlers import (
    addons,
    chargebacks,
    contracts,
    disputes,
    escalations,
    invoices,
    milestones,
    points,
    processor_fees,
    refunds,
    withdrawals,
)
from policy.outcomes import Outcome
from policy.ticks import handle_tick

Handler = Callable[[HandlerContext, Any], Outcome]
"""Applies one event of its type (the envelope model `messages.registry.EVENT_MODELS` names)."""

HANDLERS: dict[str, Handler] = {
    "contract.opened": contracts.handle_contract_opened,
    "contract.closed": contracts.handle_contract_closed,
    "milestone.funded": milestones.handle_milestone_funded,
    "work.started": milestones.handle_work_started,
    "milestone.released": milestones.handle_milestone_released,
    "hourly.invoice_paid": invoices.handle_invoice_paid,
    "refund.requested": refunds.handle_refund_requested,
    "refund.approved": refunds.handle_refund_approved,
    "refund.declined": refunds.handle_refund_declined,
    "refund.escalated": escalations.handle_refund_escalated,
    "dispute.opened": disputes.handle_dispute_opened,
    "dispute.evidence_added": disputes.handle_dispute_evidence_added,
    "dispute.resolved": disputes.handle_dispute_resolved,
    "chargeback.opened": chargebacks.handle_chargeback_opened,
    "chargeback.resolved": chargebacks.handle_chargeback_resolved,
    "processor.fee_refunded": processor_fees.handle_processor_fee_refunded,
    "addon.purchased": addons.handle_addon_purchased,
    "addon.started": addons.handle_addon_started,
    "addon.refund_requested": addons.handle_addon_refund_requested,
    "points.awarded": points.handle_points_awarded,
    "points.cashout_paid": points.handle_points_cashout_paid,
    "points.cashout_reversed": points.handle_points_cashout_reversed,
    "withdrawal.requested": withdrawals.handle_withdrawal_requested,
    "deadline.tick": handle_tick,
}
