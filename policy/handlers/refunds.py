"""`refund.requested`, `refund.approved`, `refund.declined`.

The request's state machine is described in `policy.rules.refund_requests`; the money moves
in the shared engine, `policy.refunds`.
"""

from __future__ import annotations

from messages.inbound import (
    RefundApproved,
    RefundApprovedEvent,
    RefundDeclinedEvent,
    RefundRequested,
    RefundRequestedEvent,
)
from messages.notifications import RefundDeclinedNotice, RefundRejected, RefundRequestedNotice
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.refunds import refund
from policy.rules.contracts import contract_mismatch
from policy.rules.disputes import open_dispute
from policy.rules.legs import user_account
from policy.rules.refund_requests import (
    AutomaticRefund,
    OpenDispute,
    approval_refusal_of,
    decide_request,
    decline_request,
    new_request,
    route_request,
)
from policy.state import ContractState, DisputeState, RefundRequestState
from policy.subjects import (
    dispute_open_on,
    load_paid_target,
    lock_contract,
    lock_named,
    start_dispute,
)
from policy.tables import disputes, refund_requests


def _refuse(
    context: HandlerContext,
    refusal: Rejected,
    recipient: str,
    *,
    contract_id: str,
    target_id: str | None,
    request_id: str | None,
) -> Rejected:
    """Answer a refused request, approval or decline with `refund.rejected`."""
    return context.reject(
        refusal.reason,
        [recipient],
        RefundRejected(
            event_id=context.event_id,
            contract_id=contract_id,
            target_id=target_id,
            request_id=request_id,
            reason=refusal.reason,
        ),
        detail=refusal.detail,
    )


def handle_refund_requested(context: HandlerContext, event: RefundRequestedEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    if rows.load(context.conn, refund_requests, RefundRequestState, data.request_id):
        refusal = Rejected("invalid_state", "request id in use")
        return _refuse_request(context, contract, data, refusal, record=False)
    target = load_paid_target(context, data.target_id)
    policy = context.policy(contract.policy)
    route = route_request(
        contract,
        target,
        data.amount_minor,
        context.at,
        policy,
        dispute_open=dispute_open_on(context, target),
    )
    if isinstance(route, OpenDispute):
        # SC-3 / SC-4: the request becomes a dispute that carries its id.
        dispute = open_dispute(
            contract,
            target,
            context.at,
            policy,
            dispute_id=data.request_id,
            reason=data.reason,
            existing=rows.load(context.conn, disputes, DisputeState, data.request_id),
            dispute_open=False,
        )
        if isinstance(dispute, Rejected):
            return _refuse_request(context, contract, data, dispute)
        start_dispute(context, contract, dispute)
        _record(context, data, "disputed")
        return APPLIED
    if isinstance(route, Rejected):
        return _refuse_request(context, contract, data, route)
    if isinstance(route, AutomaticRefund):
        refund(
            context,
            contract,
            target,
            data.amount_minor,
            cause=route.cause,
            request_id=data.request_id,
        )
        _record(context, data, "completed", decided=True)
        return APPLIED
    _record(context, data, "pending")
    context.notify(
        [user_account(contract.creator_id), *(["support"] if route.needs_support else [])],
        RefundRequestedNotice(
            request_id=data.request_id,
            contract_id=contract.contract_id,
            target_id=target.target_id,
            amount_minor=data.amount_minor,
            currency=target.currency,
            reason=data.reason,
        ),
    )
    return APPLIED


def _refuse_request(
    context: HandlerContext,
    contract: ContractState,
    data: RefundRequested,
    refusal: Rejected,
    *,
    record: bool = True,
) -> Rejected:
    """Refuse a request, keeping it as `rejected` so that its id is never reused."""
    if record:
        _record(context, data, "rejected")
    return _refuse(
        context,
        refusal,
        user_account(contract.client_id),
        contract_id=contract.contract_id,
        target_id=data.target_id,
        request_id=data.request_id,
    )


def _record(
    context: HandlerContext, data: RefundRequested, status: str, *, decided: bool = False
) -> None:
    request = new_request(data, context.at, status, context.at if decided else None)
    rows.insert_row(context.conn, refund_requests, request)


def handle_refund_approved(context: HandlerContext, event: RefundApprovedEvent) -> Outcome:
    """CC-2: the creator (or support) refunds, on a request or unasked, within CC-3."""
    data = event.data
    contract = lock_contract(context, data.contract_id)
    target = load_paid_target(context, data.target_id)
    request = None
    if data.request_id is not None:
        request = rows.load(
            context.conn, refund_requests, RefundRequestState, data.request_id, lock=True
        )
        if request is None:
            raise UnknownSubject("refund_request", data.request_id)
    refusal = approval_refusal_of(
        contract, target, data, context.at, context.policy(contract.policy), request=request
    )
    if refusal is not None:
        return _refuse_approval(context, contract, data, refusal)
    refund(
        context, contract, target, data.amount_minor, cause="approved", request_id=data.request_id
    )
    if request is not None:
        rows.save_row(
            context.conn,
            refund_requests,
            decide_request(request, "completed", context.at, data.decided_by),
        )
    return APPLIED


def _refuse_approval(
    context: HandlerContext, contract: ContractState, data: RefundApproved, refusal: Rejected
) -> Rejected:
    """Tell the one who approved (the creator, or support) why the refund was not paid."""
    approver = user_account(contract.creator_id) if data.approved_by == "creator" else "support"
    return _refuse(
        context,
        refusal,
        approver,
        contract_id=contract.contract_id,
        target_id=data.target_id,
        request_id=data.request_id,
    )


def handle_refund_declined(context: HandlerContext, event: RefundDeclinedEvent) -> Outcome:
    data = event.data
    contract, request = lock_named(
        context,
        data.contract_id,
        refund_requests,
        RefundRequestState,
        data.request_id,
        kind="refund_request",
    )
    mismatch = contract_mismatch(contract.contract_id, request.contract_id, "the request")
    declined = mismatch or decline_request(request, data.declined_by, context.at, data.decided_by)
    if isinstance(declined, Rejected):
        # A request of another contract: its creator is not this contract's to tell.
        by_creator = data.declined_by == "creator" and mismatch is None
        decider = user_account(contract.creator_id) if by_creator else "support"
        return _refuse(
            context,
            declined,
            decider,
            contract_id=contract.contract_id,
            target_id=request.target_id,
            request_id=request.request_id,
        )
    rows.save_row(context.conn, refund_requests, declined)
    context.notify(
        [user_account(contract.client_id)],
        RefundDeclinedNotice(
            request_id=request.request_id,
            contract_id=contract.contract_id,
            declined_by=data.declined_by,
        ),
    )
    return APPLIED
