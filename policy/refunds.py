"""The posting of a refund: every way money goes back for a milestone or an invoice goes
through `refund`.

What a refund moves, and the states it leaves, is decided by the pure plan
(`policy.rules.refunds`). `refund` carries it out inside the handler's transaction: it posts
the transfers, saves the target, the payment and the contract, tells the client
(`refund.fee_deduction_notice` first when SC-7 deducts, then `refund.completed`, then
`reviews.hidden` at the first refund that leaves the contract under the CC-6 limit) and claws
back the points earned on a milestone (SC-10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from messages.notifications import (
    RefundCause,
    RefundCompleted,
    RefundFeeDeductionNotice,
    ReviewsHidden,
)
from policy import rows
from policy.errors import UnknownSubject
from policy.points import claw_back_points
from policy.rules.legs import user_account
from policy.rules.refunds import RefundPlan, settle_refund
from policy.state import ContractState, PaymentState, TargetState
from policy.tables import contracts, payments, targets

if TYPE_CHECKING:
    from policy.context import HandlerContext


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What `refund` did, with the states it saved: use these, not the ones passed in."""

    plan: RefundPlan
    target: TargetState
    contract: ContractState


def refund(
    context: HandlerContext,
    contract: ContractState,
    target: TargetState,
    refund_minor: int,
    *,
    cause: RefundCause,
    request_id: str | None = None,
    destination: str | None = None,
) -> RefundResult:
    """Refund `refund_minor` of `target` and tell both sides; see the module's docstring.

    The caller holds the contract's row lock, has loaded `contract` and `target` under it,
    and has judged the refund allowed (0 < r <= target.refundable_minor, frozen or not).
    `destination` defaults to the client's balance (`user:<client_id>`); only a refund to
    the client's balance can carry the SC-7 deduction. Raises UnknownSubject when the
    target's payment is not recorded.
    """
    policy = context.policy(contract.policy)
    client = user_account(contract.client_id)
    to = destination or client
    payment: PaymentState | None = None
    if to == client:
        payment = rows.load(context.conn, payments, PaymentState, target.payment_id, lock=True)
        if payment is None:
            raise UnknownSubject("payment", target.payment_id)
    settled = settle_refund(
        contract,
        target,
        refund_minor,
        destination=to,
        payment=payment,
        fees=policy.fees,
        reviews=policy.reviews,
    )
    plan = settled.plan
    deducted = plan.processor_fee_deducted_minor
    if deducted:
        # SC-7: the client hears of the deduction before the refund that carries it.
        context.notify(
            [client],
            RefundFeeDeductionNotice(
                contract_id=contract.contract_id,
                target_id=target.target_id,
                payment_id=target.payment_id,
                currency=target.currency,
                refund_minor=refund_minor,
                processor_fee_deducted_minor=deducted,
            ),
            key=target.target_id,
        )
    context.post_legs(settled.legs, target.currency)
    rows.save_row(context.conn, targets, settled.target)
    if settled.payment is not None:
        rows.save_row(context.conn, payments, settled.payment)
    sides = [client, user_account(contract.creator_id)]
    context.notify(
        sides,
        RefundCompleted(
            contract_id=contract.contract_id,
            target_id=target.target_id,
            request_id=request_id,
            cause=cause,
            currency=target.currency,
            refund_minor=refund_minor,
            client_fee_reversed_minor=plan.client_fee_reversed_minor,
            creator_fee_reversed_minor=plan.creator_fee_reversed_minor,
            processor_fee_deducted_minor=deducted,
            credited_to_client_minor=plan.net_paid_out_minor,
            clawed_back_from_creator_minor=plan.clawed_from_creator_minor,
        ),
        key=target.target_id,
    )
    if settled.target.kind == "milestone":
        # SC-10: points earned on the milestone follow its money back.
        claw_back_points(
            context,
            settled.target.target_id,
            settled.target.refunded_minor,
            settled.target.amount_minor,
        )
    if settled.hides_reviews:
        context.notify(
            sides,
            ReviewsHidden(
                contract_id=contract.contract_id,
                currency=contract.currency,
                net_value_minor=settled.contract.net_value_minor,
            ),
        )
    rows.save_row(context.conn, contracts, settled.contract)
    return RefundResult(plan=plan, target=settled.target, contract=settled.contract)
