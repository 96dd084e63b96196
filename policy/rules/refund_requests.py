"""Refund requests, approvals and declines (SC-2, SC-3, SC-13, CC-2, CC-3, CC-4).

A request's states (`RefundRequestState.status`):

- `spectrum` decides at once: `completed` (SC-2 automatic refund, or SC-13 within a
  cooling-off) or `disputed` (SC-3 work started, SC-4 released money: a dispute opens with
  the request's id, and the dispute's decision is the request's fate).
- `cadcrowd` asks the creator (CC-2): `pending` until `refund.approved` makes it `completed`
  or `refund.declined` makes it `declined`; a declined request that the client escalates
  (CC-9) is `escalated`, and then only support declines it, while either may approve it.
- A request refused on arrival is kept as `rejected`, so its id is never reused.

The creator may also refund without a request (`refund.approved` with no `request_id`), under
both presets, within the CC-3 windows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from messages.inbound import Approver, RefundApproved, RefundRequested
from policy.config import PolicyConfig
from policy.outcomes import Rejected
from policy.rules.presets import requests_go_to_creator
from policy.rules.targets import amount_refusal, ownership_refusal
from policy.rules.windows import approval_refusal, in_cooling_off
from policy.state import ContractState, RefundRequestState, TargetState

AWAITING_DECISION = ("pending", "escalated")


@dataclass(frozen=True, slots=True)
class AutomaticRefund:
    """SC-2 (work not started) or SC-13 (within the cooling-off): refund at once."""

    cause: Literal["automatic", "cooling_off"]


@dataclass(frozen=True, slots=True)
class OpenDispute:
    """SC-3 (work started) or SC-4 (released money): the request opens a dispute, if the
    dispute rules (`policy.rules.disputes.open_dispute`) allow one."""


@dataclass(frozen=True, slots=True)
class AskCreator:
    """CC-2: the request waits for the creator; past the creator's CC-3 window, for support."""

    needs_support: bool


RequestRoute = AutomaticRefund | OpenDispute | AskCreator


def route_request(
    contract: ContractState,
    target: TargetState,
    amount_minor: int,
    at: datetime,
    policy: PolicyConfig,
    *,
    dispute_open: bool,
) -> RequestRoute | Rejected:
    """Where a refund request of `amount_minor` of `target` goes, or why it is refused.

    `dispute_open` says whether a dispute on the target is still open: one workflow at a
    time per target.
    """
    refusal = ownership_refusal(contract, target) or amount_refusal(contract, target, amount_minor)
    if refusal is not None:
        return refusal
    if dispute_open:
        return Rejected("invalid_state", f"a dispute on {target.target_id} is open")
    windows = policy.windows_for(contract.client_jurisdiction)
    if requests_go_to_creator(policy):
        # CC-3 decides who can still approve: nobody, support alone, or the creator.
        if approval_refusal(target.paid_at, at, "support", windows) is not None:
            return Rejected("window_expired", "no one can approve a refund of it any more")
        return AskCreator(
            needs_support=approval_refusal(target.paid_at, at, "creator", windows) is not None
        )
    if target.status == "funded":
        started = target.work_started_at is not None and target.work_started_at <= at
        if not started or in_cooling_off(target.paid_at, at, windows):
            if target.frozen:
                return Rejected("frozen", f"{target.target_id} is frozen by a chargeback")
            return AutomaticRefund("cooling_off" if started else "automatic")
    return OpenDispute()


def new_request(
    data: RefundRequested, at: datetime, status: str, decided_at: datetime | None = None
) -> RefundRequestState:
    return RefundRequestState(
        request_id=data.request_id,
        contract_id=data.contract_id,
        target_id=data.target_id,
        amount_minor=data.amount_minor,
        reason=data.reason,
        requested_at=at,
        status=status,
        decided_at=decided_at,
    )


def approval_refusal_of(
    contract: ContractState,
    target: TargetState,
    data: RefundApproved,
    at: datetime,
    policy: PolicyConfig,
    *,
    request: RefundRequestState | None,
) -> Rejected | None:
    """Why an approved refund cannot be paid, or None (CC-2, CC-3, CC-4, SC-11's freeze).

    The approved amount may differ from the one asked (total, partial); it is bounded by
    what is left of the target and of the contract, not by the request.
    """
    refusal = ownership_refusal(contract, target)
    if refusal is not None:
        return refusal
    if request is not None:
        if request.contract_id != contract.contract_id or request.target_id != target.target_id:
            return Rejected("invalid_state", f"request {request.request_id} is for another target")
        if request.status not in AWAITING_DECISION:
            return Rejected("invalid_state", f"request {request.request_id} is {request.status}")
    windows = policy.windows_for(contract.client_jurisdiction)
    reason = approval_refusal(target.paid_at, at, data.approved_by, windows)
    if reason is not None:
        return Rejected(reason, f"paid at {target.paid_at.isoformat()}")
    refusal = amount_refusal(contract, target, data.amount_minor)
    if refusal is not None:
        return refusal
    if target.frozen:
        return Rejected("frozen", f"{target.target_id} is frozen by a chargeback")
    return None


def decide_request(
    request: RefundRequestState, status: str, at: datetime, decided_by: str | None = None
) -> RefundRequestState:
    return dataclasses.replace(request, status=status, decided_at=at, decided_by=decided_by)


def decline_request(
    request: RefundRequestState,
    declined_by: Approver,
    at: datetime,
    decided_by: str | None = None,
) -> RefundRequestState | Rejected:
    """CC-2: the creator (or support) declines a pending request; support alone an escalated
    one, since escalating takes it out of the creator's hands (CC-9)."""
    if request.status == "pending" or (request.status == "escalated" and declined_by == "support"):
        return decide_request(request, "declined", at, decided_by)
    return Rejected("invalid_state", f"request {request.request_id} is {request.status}")
