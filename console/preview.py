"""What a dispute decision would do, computed by the engine's own pure rules.

`settle_dispute` judges the decision as the handler will, `plan_refund` splits the refund
(escrow first, then clawback; SC-5, SC-6, SC-7), and `release_milestone` releases what is left
of a funded milestone, exactly as `dispute.resolved` books it. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from console.queries import DisputeCase
from messages.inbound import DisputeOutcome
from policy.config import PolicySet
from policy.outcomes import Rejected
from policy.rows import load
from policy.rules.disputes import settle_dispute
from policy.rules.milestones import release_milestone
from policy.rules.refunds import plan_refund, refunded_target
from policy.state import PaymentState
from policy.tables import payments

OUTCOMES: tuple[DisputeOutcome, ...] = ("full_refund", "partial_refund", "release_to_creator")


@dataclass(frozen=True, slots=True)
class Preview:
    outcome: str
    currency: str
    refused: str | None  # the reason code the engine would reject with, and its detail
    refund_minor: int = 0
    client_receives_minor: int = 0  # the refund plus the client fee reversed, less SC-7
    from_escrow_minor: int = 0
    clawed_from_creator_minor: int = 0
    client_fee_reversed_minor: int = 0
    creator_fee_reversed_minor: int = 0
    processor_fee_deducted_minor: int = 0
    released_to_creator_minor: int = 0  # the rest of the escrow, less the creator fee
    creator_fee_on_release_minor: int = 0

    @property
    def moves_minor(self) -> int:
        """The most that goes to or from one party (OP-2 compares it with the threshold)."""
        return max(
            self.client_receives_minor,
            self.clawed_from_creator_minor,
            self.released_to_creator_minor,
        )


def preview_decision(
    conn: Connection,
    policies: PolicySet,
    case: DisputeCase,
    *,
    outcome: DisputeOutcome,
    amount_minor: int | None,
    at: datetime,
) -> Preview:
    if case.contract is None or case.target is None:
        return Preview(outcome, case.currency, "unknown_subject: the contract or target is gone")
    if outcome == "partial_refund" and (amount_minor is None or amount_minor <= 0):
        return Preview(outcome, case.currency, "a partial refund needs a positive amount")
    settlement = settle_dispute(case.dispute, case.contract, case.target, outcome, amount_minor)
    if isinstance(settlement, Rejected):
        return Preview(outcome, case.currency, f"{settlement.reason}: {settlement.detail}")
    target = case.target
    policy = policies.get(case.contract.policy)
    payment = load(conn, payments, PaymentState, target.payment_id)
    fields: dict[str, int] = {}
    if settlement.refund_minor:
        plan = plan_refund(
            target,
            settlement.refund_minor,
            small_refund_threshold_minor=policy.fees.small_refund_threshold_minor,
            processor_fee_refunded=payment is not None and payment.processor_fee_refunded_minor > 0,
        )
        fields.update(
            refund_minor=plan.refund_minor,
            client_receives_minor=plan.net_paid_out_minor,
            from_escrow_minor=plan.from_escrow_minor,
            clawed_from_creator_minor=plan.clawed_from_creator_minor,
            client_fee_reversed_minor=plan.client_fee_reversed_minor,
            creator_fee_reversed_minor=plan.creator_fee_reversed_minor,
            processor_fee_deducted_minor=plan.processor_fee_deducted_minor,
        )
        target = refunded_target(target, plan)
    if settlement.release_rest and target.status == "funded":
        release = release_milestone(case.contract, target, at)
        if isinstance(release, Rejected):
            return Preview(outcome, case.currency, f"{release.reason}: {release.detail}")
        fields.update(
            released_to_creator_minor=release.released_minor - release.creator_fee_minor,
            creator_fee_on_release_minor=release.creator_fee_minor,
        )
    return Preview(outcome, case.currency, None, **fields)
