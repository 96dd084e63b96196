"""`refund.escalated`: the client takes a declined hourly refund to support (CC-9).

The rule is `policy.rules.hourly.escalate`; the request's state machine is described in
`policy.rules.refund_requests`.
"""

from __future__ import annotations

from messages.inbound import RefundEscalatedEvent
from messages.notifications import RefundEscalatedNotice, RefundRejected
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.contracts import contract_mismatch
from policy.rules.hourly import escalate
from policy.rules.legs import user_account
from policy.state import RefundRequestState, TargetState
from policy.subjects import both_sides, lock_named
from policy.tables import refund_requests, targets

SUPPORT = "support"


def handle_refund_escalated(context: HandlerContext, event: RefundEscalatedEvent) -> Outcome:
    request_id = event.data.request_id
    contract, request = lock_named(
        context,
        event.data.contract_id,
        refund_requests,
        RefundRequestState,
        request_id,
        kind="refund_request",
    )
    mismatch = contract_mismatch(contract.contract_id, request.contract_id, "the request")
    if mismatch is None:
        target = rows.load(context.conn, targets, TargetState, request.target_id)
        windows = context.policy(contract.policy).windows_for(contract.client_jurisdiction)
        escalated = escalate(contract, request, target, windows, context.at)
    else:
        escalated = mismatch
    if isinstance(escalated, Rejected):
        return context.reject(
            escalated.reason,
            # A request of another contract: its parties are not this contract's to tell.
            [SUPPORT if mismatch else user_account(contract.client_id)],
            RefundRejected(
                event_id=context.event_id,
                contract_id=contract.contract_id,
                target_id=request.target_id,
                request_id=request_id,
                reason=escalated.reason,
            ),
            detail=escalated.detail,
        )
    rows.save_row(context.conn, refund_requests, escalated)
    context.notify(
        [SUPPORT, *both_sides(contract)],
        RefundEscalatedNotice(request_id=request_id, contract_id=contract.contract_id),
    )
    return APPLIED
