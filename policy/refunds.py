"""The refund engine: every way money goes back for a milestone or an invoice goes through here.

SC-2 automatic refunds, SC-3 and SC-5 dispute decisions, CC-2 and CC-10 approved refunds and
the SC-11 settlement of a chargeback the client won all give back part of a *target* (a
milestone or an invoice) the same way, so they share this one implementation:

1. `plan_refund(target, r, ...)` (pure) splits a refund of `r`, counted in the target's own
   amount (fees excluded), into where the money comes from and which fees it reverses:

   - **escrow first**: what the milestone's escrow still holds (an invoice holds nothing);
   - **then a clawback** of released money from the creator, whose balance may go negative
     (SC-5; an invoice's money was always released to the creator, CC-1);
   - **the SC-6 fee reversal, cumulative**: after the refund, the fee reversed so far is
     round_half_even(fee x refunded so far / amount), for the client fee and the creator fee
     alike, so partial refunds that add up to the whole reverse exactly the whole fee. The
     escrow part is refunded before the clawed-back part, each with its own cumulative step.
     The creator fee on escrowed money was never charged (it is charged at release), so its
     reversal is only recorded (`creator_fee_waived_minor`, which lowers the fee a later
     release charges); on clawed-back money the platform pays the charged fee back
     (`creator_fee_reversed_minor`): it keeps no fee on money taken back from the creator;
   - **the SC-7 deduction** `d` = round_half_even(processor fee x r / amount) when r is
     below the policy's small-refund threshold and the payment's processor fee has not been
     refunded to the platform (`processor.fee_refunded` passes it back later).

   Always: r = from_escrow + clawed_from_creator + creator_fee_reversed, and the destination
   receives r + client_fee_reversed, then gives d to `platform:processor_fees`.
2. `refund_legs(plan, ...)` (pure): those movements as the transfers of docs/money-flows.md.
3. `refunded_target(target, plan)` (pure): the target after the refund.
4. `refund(context, contract, target, r, ...)`: all of the above inside the handler's
   transaction: posts the transfers, saves the target, the contract and the payment, and
   tells the client (`refund.fee_deduction_notice` first when SC-7 deducts, then
   `refund.completed`, then `reviews.hidden` at the first refund that leaves the contract
   under the CC-6 limit).

The engine does not judge whether a refund is allowed (windows, frozen escrow, states): the
caller's rule does. In particular it refunds a frozen target, because settling a chargeback
must (SC-11); every other caller refuses a frozen target with `frozen` first.

Amounts on `ContractState`: `paid_total_minor` counts the targets' own amounts (fees
excluded) and `refunded_total_minor` the refunds `r`, so a target's `refundable_minor` bounds
every refund and the contract's `net_value_minor` is what CC-4 and CC-6 speak of.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger import TransferCode
from messages.notifications import (
    RefundCause,
    RefundCompleted,
    RefundFeeDeductionNotice,
    ReviewsHidden,
)
from policy import rows
from policy.errors import UnknownSubject
from policy.money import cumulative_reversal_minor, share_minor
from policy.points import claw_back_points
from policy.rules.legs import (
    PLATFORM_FEES,
    PLATFORM_PROCESSOR_FEES,
    Leg,
    escrow_account,
    user_account,
)
from policy.rules.reviews import hides_reviews
from policy.state import ContractState, PaymentState, TargetState
from policy.tables import contracts, payments, targets

if TYPE_CHECKING:
    from policy.context import HandlerContext


@dataclass(frozen=True, slots=True)
class RefundPlan:
    """Where a refund of `refund_minor` comes from and what it reverses, to the cent."""

    target_id: str
    refund_minor: int
    from_escrow_minor: int
    """The part of the refund that leaves the milestone's escrow."""
    clawed_back_minor: int
    """The part of the refund taken back from released money (creator and creator fee)."""
    client_fee_reversed_minor: int
    """The change in the cumulative client-fee reversal: the platform pays it back."""
    creator_fee_reversed_minor: int
    """The creator fee on the clawed-back part: charged at release, the platform pays it back."""
    creator_fee_waived_minor: int
    """The creator fee on the escrow part: never charged, so recorded and not paid."""
    processor_fee_deducted_minor: int
    """The SC-7 deduction, taken from the client after the refund."""

    @property
    def clawed_from_creator_minor(self) -> int:
        """What the creator's balance gives back: the clawed-back part less its creator fee."""
        return self.clawed_back_minor - self.creator_fee_reversed_minor

    @property
    def paid_out_minor(self) -> int:
        """What the destination receives before any deduction: r plus the client fee reversed."""
        return self.refund_minor + self.client_fee_reversed_minor

    @property
    def net_paid_out_minor(self) -> int:
        return self.paid_out_minor - self.processor_fee_deducted_minor


def plan_refund(
    target: TargetState,
    refund_minor: int,
    *,
    small_refund_threshold_minor: int = 0,
    processor_fee_refunded: bool = False,
) -> RefundPlan:
    """Split a refund of `refund_minor` of `target` (SC-5, SC-6, SC-7); pure.

    `small_refund_threshold_minor` 0 (the default) never deducts the processor fee; pass the
    policy's threshold for a refund to the client's balance. Raises ValueError unless
    0 < refund_minor <= target.refundable_minor: the caller's rule refuses bigger ones.
    """
    if not 0 < refund_minor <= target.refundable_minor:
        raise ValueError(
            f"refund {refund_minor} of {target.target_id!r} is not within 1.."
            f"{target.refundable_minor}"
        )
    amount = target.amount_minor
    from_escrow = min(refund_minor, target.held_in_escrow_minor)
    after_escrow = target.refunded_minor + from_escrow
    after_all = target.refunded_minor + refund_minor
    creator_fee_after_escrow = cumulative_reversal_minor(
        target.creator_fee_minor, after_escrow, amount
    )
    creator_fee_after_all = cumulative_reversal_minor(target.creator_fee_minor, after_all, amount)
    client_fee_after_all = cumulative_reversal_minor(target.client_fee_minor, after_all, amount)
    deducts = refund_minor < small_refund_threshold_minor and not processor_fee_refunded
    return RefundPlan(
        target_id=target.target_id,
        refund_minor=refund_minor,
        from_escrow_minor=from_escrow,
        clawed_back_minor=refund_minor - from_escrow,
        client_fee_reversed_minor=client_fee_after_all - target.client_fee_reversed_minor,
        creator_fee_reversed_minor=creator_fee_after_all - creator_fee_after_escrow,
        creator_fee_waived_minor=creator_fee_after_escrow - target.creator_fee_reversed_minor,
        processor_fee_deducted_minor=(
            share_minor(target.processor_fee_minor, refund_minor, amount) if deducts else 0
        ),
    )


def refund_legs(plan: RefundPlan, *, creator_id: str, destination: str) -> list[Leg]:
    """The transfers of a planned refund (docs/money-flows.md), zero legs included.

    `destination` receives the refund: the client's balance, or `platform:chargebacks` when a
    chargeback already gave the money back through the card.
    """
    return [
        Leg(
            escrow_account(plan.target_id),
            destination,
            plan.from_escrow_minor,
            TransferCode.REFUND,
        ),
        Leg(
            user_account(creator_id),
            destination,
            plan.clawed_from_creator_minor,
            TransferCode.CLAWBACK,
        ),
        Leg(
            PLATFORM_FEES,
            destination,
            plan.creator_fee_reversed_minor,
            TransferCode.CREATOR_FEE_REVERSAL,
        ),
        Leg(
            PLATFORM_FEES,
            destination,
            plan.client_fee_reversed_minor,
            TransferCode.CLIENT_FEE_REVERSAL,
        ),
        Leg(
            destination,
            PLATFORM_PROCESSOR_FEES,
            plan.processor_fee_deducted_minor,
            TransferCode.PROCESSOR_FEE_DEDUCTION,
        ),
    ]


def refunded_target(target: TargetState, plan: RefundPlan) -> TargetState:
    """The target after the refund; fully refunded, it becomes `refunded` (terminal)."""
    refunded = target.refunded_minor + plan.refund_minor
    return dataclasses.replace(
        target,
        refunded_minor=refunded,
        clawed_back_minor=target.clawed_back_minor + plan.clawed_back_minor,
        client_fee_reversed_minor=target.client_fee_reversed_minor + plan.client_fee_reversed_minor,
        creator_fee_reversed_minor=target.creator_fee_reversed_minor
        + plan.creator_fee_waived_minor
        + plan.creator_fee_reversed_minor,
        status="refunded" if refunded == target.amount_minor else target.status,
    )


@dataclass(frozen=True, slots=True)
class RefundResult:
    """What `refund` did, with the states it saved: use these, not the ones passed in."""

    plan: RefundPlan
    target: TargetState
    contract: ContractState


def post_legs(context: HandlerContext, legs: Sequence[Leg], currency: str) -> None:
    """Post a decision's legs, all or none, as transfers of the context's cause."""
    context.post(
        [
            context.transfer(leg.debit, leg.credit, leg.amount_minor, currency, leg.code)
            for leg in legs
        ]
    )


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
    threshold = 0
    if to == client:
        threshold = policy.fees.small_refund_threshold_minor
        payment = rows.load(context.conn, payments, PaymentState, target.payment_id, lock=True)
        if payment is None:
            raise UnknownSubject("payment", target.payment_id)
    plan = plan_refund(
        target,
        refund_minor,
        small_refund_threshold_minor=threshold,
        processor_fee_refunded=payment is not None and payment.processor_fee_refunded_minor > 0,
    )
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
    post_legs(
        context,
        refund_legs(plan, creator_id=contract.creator_id, destination=to),
        target.currency,
    )
    new_target = refunded_target(target, plan)
    new_contract = dataclasses.replace(
        contract, refunded_total_minor=contract.refunded_total_minor + refund_minor
    )
    rows.save_row(context.conn, targets, new_target)
    if payment is not None and deducted:
        rows.save_row(
            context.conn,
            payments,
            dataclasses.replace(
                payment, deducted_from_client_minor=payment.deducted_from_client_minor + deducted
            ),
        )
    context.notify(
        [client, user_account(contract.creator_id)],
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
    if new_target.kind == "milestone":
        # SC-10: points earned on the milestone follow its money back.
        claw_back_points(
            context, new_target.target_id, new_target.refunded_minor, new_target.amount_minor
        )
    if hides_reviews(new_contract, policy.reviews):
        new_contract = dataclasses.replace(new_contract, reviews_hidden=True)
        context.notify(
            [client, user_account(contract.creator_id)],
            ReviewsHidden(
                contract_id=contract.contract_id,
                currency=contract.currency,
                net_value_minor=new_contract.net_value_minor,
            ),
        )
    rows.save_row(context.conn, contracts, new_contract)
    return RefundResult(plan=plan, target=new_target, contract=new_contract)
