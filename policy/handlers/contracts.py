"""`contract.opened`, `contract.closed` and the windows a close sets (CC-7 reviews, SC-4
disputes of released milestones).

The locks every handler of a contract's events takes are `policy.subjects`'.
"""

from __future__ import annotations

from messages.inbound import ContractClosedEvent, ContractOpenedEvent
from messages.notifications import ReviewWindowClosed
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.contracts import close_contract, open_contract
from policy.rules.reviews import review_window_end
from policy.state import ContractState, TargetState
from policy.subjects import REVIEW_WINDOW, both_sides, lock_contract, schedule_finalize
from policy.tables import contracts, targets


def handle_contract_opened(context: HandlerContext, event: ContractOpenedEvent) -> Outcome:
    data = event.data
    existing = rows.load(context.conn, contracts, ContractState, data.contract_id, lock=True)
    policy_name = data.policy or context.policies.default
    contract = open_contract(existing, data, policy_name, context.at)
    if isinstance(contract, Rejected):
        return context.reject(
            contract.reason, ["support"], subject_id=data.contract_id, detail=contract.detail
        )
    rows.insert_row(context.conn, contracts, contract)
    return APPLIED


def handle_contract_closed(context: HandlerContext, event: ContractClosedEvent) -> Outcome:
    contract = lock_contract(context, event.data.contract_id)
    closed = close_contract(contract, context.at)
    if isinstance(closed, Rejected):
        return context.reject(
            closed.reason, ["support"], subject_id=contract.contract_id, detail=closed.detail
        )
    rows.save_row(context.conn, contracts, closed)
    policy = context.policy(closed.policy)
    windows = policy.windows_for(closed.client_jurisdiction)
    context.schedule(REVIEW_WINDOW, closed.contract_id, review_window_end(context.at, windows))
    for milestone in rows.load_matching(
        context.conn, targets, TargetState, contract_id=closed.contract_id, status="released"
    ):
        schedule_finalize(context, closed, milestone)
    return APPLIED


def fire_review_window(context: HandlerContext, contract_id: str) -> Outcome:
    """CC-7: the window to post reviews of the closed contract is over."""
    contract = lock_contract(context, contract_id)
    if contract.closed_at is None:
        # Only a close schedules this deadline; raised, not asserted (python -O drops asserts).
        raise RuntimeError(f"review window of {contract_id} fired but the contract is open")
    context.notify(
        both_sides(contract),
        ReviewWindowClosed(contract_id=contract.contract_id, closed_at=contract.closed_at),
    )
    return APPLIED
