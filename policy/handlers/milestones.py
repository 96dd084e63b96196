"""`milestone.funded`, `work.started`, `milestone.released`, and the SC-4 finality deadline.

The milestone's state machine is described in `policy.rules.milestones`.
"""

from __future__ import annotations

from messages.inbound import MilestoneFundedEvent, MilestoneReleasedEvent, WorkStartedEvent
from messages.notifications import MilestoneFinalized
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.legs import user_account
from policy.rules.milestones import (
    finalize_milestone,
    fund_milestone,
    start_work,
)
from policy.state import PaymentState, TargetState
from policy.subjects import (
    both_sides,
    contract_of,
    load_target,
    lock_contract,
    record_charge,
    release,
)
from policy.tables import payments, targets


def handle_milestone_funded(context: HandlerContext, event: MilestoneFundedEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    existing = rows.load(context.conn, targets, TargetState, data.milestone_id, lock=True)
    payment = rows.load(context.conn, payments, PaymentState, data.payment_id, lock=True)
    policy = context.policy(contract.policy)
    funding = fund_milestone(
        contract, data, policy.fees, context.at, existing=existing, payment=payment
    )
    if isinstance(funding, Rejected):
        return context.reject(
            funding.reason,
            [user_account(contract.client_id), "support"],
            subject_id=data.milestone_id,
            detail=funding.detail,
        )
    record_charge(
        context,
        funding.legs,
        target=funding.milestone,
        payment=funding.payment,
        payment_existed=payment is not None,
        contract=funding.contract,
    )
    return APPLIED


def handle_work_started(context: HandlerContext, event: WorkStartedEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    milestone = load_target(context, data.milestone_id, "milestone")
    started = start_work(contract, milestone, context.at)
    if isinstance(started, Rejected):
        return context.reject(
            started.reason,
            [user_account(contract.creator_id)],
            subject_id=data.milestone_id,
            detail=started.detail,
        )
    if started is not None:
        rows.save_row(context.conn, targets, started)
    return APPLIED


def handle_milestone_released(context: HandlerContext, event: MilestoneReleasedEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    milestone = load_target(context, data.milestone_id, "milestone")
    released = release(context, contract, milestone)
    if isinstance(released, Rejected):
        releaser = (
            user_account(contract.client_id) if data.released_by == "client" else "dispute_team"
        )
        return context.reject(
            released.reason, [releaser], subject_id=data.milestone_id, detail=released.detail
        )
    return APPLIED


def fire_finalize(context: HandlerContext, milestone_id: str) -> Outcome:
    """SC-4: the dispute window of a released milestone closed; it is final."""
    contract = lock_contract(context, contract_of(context, milestone_id))
    final = finalize_milestone(load_target(context, milestone_id, "milestone"), context.at)
    if final is None:
        return APPLIED
    rows.save_row(context.conn, targets, final)
    context.notify(
        both_sides(contract),
        MilestoneFinalized(contract_id=contract.contract_id, milestone_id=milestone_id),
    )
    return APPLIED
