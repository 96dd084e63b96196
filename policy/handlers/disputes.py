"""`dispute.opened`, `dispute.resolved`, and the SC-14 overdue deadline.

The dispute's state machine is described in `policy.rules.disputes`.
"""

from __future__ import annotations

import dataclasses

from messages.inbound import DisputeEvidenceAddedEvent, DisputeOpenedEvent, DisputeResolvedEvent
from messages.notifications import (
    DisputeEvidenceAddedNotice,
    DisputeOverdue,
    DisputeRejected,
    DisputeResolvedNotice,
)
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.refunds import refund
from policy.rules.contracts import contract_mismatch
from policy.rules.disputes import mark_overdue, open_dispute, resolved, settle_dispute
from policy.rules.legs import escrow_account, user_account
from policy.state import (
    ContractState,
    DisputeState,
    EvidenceState,
    RefundRequestState,
)
from policy.subjects import (
    DISPUTE_TEAM,
    OVERDUE,
    both_sides,
    dispute_open_on,
    load_paid_target,
    load_target,
    lock_contract,
    lock_named,
    lock_via_contract,
    release,
    start_dispute,
)
from policy.tables import dispute_evidence, disputes, refund_requests
from scheduler.store import cancel


def _refuse(
    context: HandlerContext,
    refusal: Rejected,
    recipient: str,
    *,
    dispute_id: str,
    contract_id: str,
    target_id: str,
) -> Rejected:
    return context.reject(
        refusal.reason,
        [recipient],
        DisputeRejected(
            event_id=context.event_id,
            dispute_id=dispute_id,
            contract_id=contract_id,
            target_id=target_id,
            reason=refusal.reason,
        ),
        detail=refusal.detail,
    )


def handle_dispute_opened(context: HandlerContext, event: DisputeOpenedEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    target = load_paid_target(context, data.target_id)
    dispute = open_dispute(
        contract,
        target,
        context.at,
        context.policy(contract.policy),
        dispute_id=data.dispute_id,
        reason=data.reason,
        existing=rows.load(context.conn, disputes, DisputeState, data.dispute_id),
        dispute_open=dispute_open_on(context, target),
    )
    if isinstance(dispute, Rejected):
        return _refuse(
            context,
            dispute,
            user_account(contract.client_id),
            dispute_id=data.dispute_id,
            contract_id=contract.contract_id,
            target_id=data.target_id,
        )
    start_dispute(context, contract, dispute)
    return APPLIED


def lock_dispute(context: HandlerContext, dispute_id: str) -> tuple[ContractState, DisputeState]:
    """The dispute and its contract, the contract locked first like every contract event."""
    return lock_via_contract(context, disputes, DisputeState, dispute_id, "dispute")


def handle_dispute_resolved(context: HandlerContext, event: DisputeResolvedEvent) -> Outcome:
    data = event.data
    contract, dispute = lock_named(
        context, data.contract_id, disputes, DisputeState, data.dispute_id, kind="dispute"
    )
    mismatch = contract_mismatch(contract.contract_id, dispute.contract_id, "the dispute")
    if mismatch is not None:
        return _refuse(
            context,
            mismatch,
            DISPUTE_TEAM,
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            target_id=dispute.target_id,
        )
    target = load_target(context, dispute.target_id)
    settlement = settle_dispute(dispute, contract, target, data.outcome, data.refund_amount_minor)
    if isinstance(settlement, Rejected):
        return _refuse(
            context,
            settlement,
            DISPUTE_TEAM,
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            target_id=target.target_id,
        )
    request = _request_behind(context, dispute)
    # A refund that leaves part of a funded milestone, then the release of that part (the
    # branch below, once the refund has not ended the milestone): two postings. Their accounts
    # are locked together first, so that two such decisions on contracts that share users
    # cannot deadlock.
    if (
        0 < settlement.refund_minor < target.refundable_minor
        and settlement.release_rest
        and target.status == "funded"
    ):
        context.book.lock(
            [escrow_account(target.target_id), *both_sides(contract)], target.currency
        )
    if settlement.refund_minor:
        result = refund(
            context,
            contract,
            target,
            settlement.refund_minor,
            cause="dispute",
            request_id=request.request_id if request else None,
        )
        contract, target = result.contract, result.target
    released_minor = 0
    if settlement.release_rest and target.status == "funded":
        released = release(context, contract, target)
        if isinstance(released, Rejected):
            raise RuntimeError(f"settled dispute could not release: {released.detail}")
        released_minor = released.released_minor
    rows.save_row(
        context.conn,
        disputes,
        resolved(
            dispute,
            data.outcome,
            settlement.refund_minor,
            released_minor,
            context.at,
            decided_by=data.decided_by,
        ),
    )
    if request is not None:
        # SC-3: the request that opened the dispute ends with the decision, refunded or not.
        status = "completed" if settlement.refund_minor else "declined"
        rows.save_row(
            context.conn,
            refund_requests,
            dataclasses.replace(
                request, status=status, decided_at=context.at, decided_by=data.decided_by
            ),
        )
    cancel(context.conn, OVERDUE, dispute.dispute_id, at=context.at, event_id=context.event_id)
    context.notify(
        [*both_sides(contract), DISPUTE_TEAM],
        DisputeResolvedNotice(
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            target_id=target.target_id,
            outcome=data.outcome,
            currency=target.currency,
            refund_minor=settlement.refund_minor,
            released_minor=released_minor,
        ),
    )
    return APPLIED


def handle_dispute_evidence_added(
    context: HandlerContext, event: DisputeEvidenceAddedEvent
) -> Outcome:
    """Keep what a party submitted to a dispute (the files stay with the marketplace) and tell
    the dispute team; no money moves."""
    data = event.data
    contract = lock_contract(context, data.contract_id)
    dispute = rows.load(context.conn, disputes, DisputeState, data.dispute_id)
    if dispute is None:
        raise UnknownSubject("dispute", data.dispute_id)
    refusal = contract_mismatch(contract.contract_id, dispute.contract_id, "the dispute")
    if refusal is None and rows.load(
        context.conn, dispute_evidence, EvidenceState, data.evidence_id
    ):
        refusal = Rejected("invalid_state", f"evidence id {data.evidence_id} in use")
    if refusal is not None:
        return _refuse(
            context,
            refusal,
            DISPUTE_TEAM,
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            target_id=dispute.target_id,
        )
    attachments = [attachment.model_dump(mode="json") for attachment in data.attachments]
    rows.insert_row(
        context.conn,
        dispute_evidence,
        EvidenceState(
            evidence_id=data.evidence_id,
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            party=data.party,
            text=data.text,
            attachments=attachments,
            occurred_at=context.at,
            event_id=context.event_id,
        ),
    )
    context.notify(
        [DISPUTE_TEAM],
        DisputeEvidenceAddedNotice(
            evidence_id=data.evidence_id,
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            party=data.party,
            text=data.text,
            attachments=data.attachments,
        ),
    )
    return APPLIED


def _request_behind(context: HandlerContext, dispute: DisputeState) -> RefundRequestState | None:
    """The refund request that opened `dispute` under SC-3 (it shares the dispute's id)."""
    request = rows.load(
        context.conn, refund_requests, RefundRequestState, dispute.dispute_id, lock=True
    )
    return request if request is not None and request.status == "disputed" else None


def fire_overdue(context: HandlerContext, dispute_id: str) -> Outcome:
    """SC-14: the dispute is still open after the SLA; tell the dispute team, once."""
    contract, dispute = lock_dispute(context, dispute_id)
    overdue = mark_overdue(dispute, context.at)
    if overdue is None:
        return APPLIED
    rows.save_row(context.conn, disputes, overdue)
    context.notify(
        [DISPUTE_TEAM],
        DisputeOverdue(
            dispute_id=dispute.dispute_id,
            contract_id=contract.contract_id,
            opened_at=dispute.opened_at,
            sla_days=context.policy(contract.policy)
            .windows_for(contract.client_jurisdiction)
            .dispute_sla_days,
        ),
    )
    return APPLIED
