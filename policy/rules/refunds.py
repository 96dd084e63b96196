"""The refund plan (pure): what a refund of part of a *target* (a milestone or an invoice) moves.

SC-2 automatic refunds, SC-3 and SC-5 dispute decisions, CC-2 and CC-10 approved refunds and
the SC-11 settlement of a chargeback the client won all give back part of a target the same
way. This module decides it; `policy.refunds.refund` posts it.

1. `plan_refund(target, r, ...)` splits a refund of `r`, counted in the target's own amount
   (fees excluded), into where the money comes from and which fees it reverses:

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
2. `refund_legs(plan, ...)`: those movements as the transfers of docs/money-flows.md.
3. `refunded_target(target, plan)`: the target after the refund.
4. `settle_refund(...)`: all of the above for one refund, with the contract and the payment
   after it and whether it hides the contract's reviews (CC-6).

Nothing here judges whether a refund is allowed (windows, frozen escrow, states): the
caller's rule does. In particular a frozen target is refunded, because settling a chargeback
must (SC-11); every other caller refuses a frozen target with `frozen` first.

Amounts on `ContractState`: `paid_total_minor` counts the targets' own amounts (fees
excluded) and `refunded_total_minor` the refunds `r`, so a target's `refundable_minor` bounds
every refund and the contract's `net_value_minor` is what CC-4 and CC-6 speak of.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ledger.codes import TransferCode
from policy.config import Fees, Reviews
from policy.money import cumulative_reversal_minor, share_minor
from policy.rules.legs import (
    PLATFORM_FEES,
    PLATFORM_PROCESSOR_FEES,
    Leg,
    escrow_account,
    user_account,
)
from policy.rules.reviews import hides_reviews
from policy.state import ContractState, PaymentState, TargetState


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
class RefundSettlement:
    """One refund decided: its plan and legs, and the states it leaves."""

    plan: RefundPlan
    legs: list[Leg]
    target: TargetState
    contract: ContractState
    """The refunded total raised and, when `hides_reviews`, the reviews hidden."""
    payment: PaymentState | None
    """The payment with the SC-7 deduction added; None when nothing was deducted."""
    hides_reviews: bool
    """The first refund that leaves the contract under the CC-6 limit."""


def settle_refund(
    contract: ContractState,
    target: TargetState,
    refund_minor: int,
    *,
    destination: str,
    payment: PaymentState | None,
    fees: Fees,
    reviews: Reviews,
) -> RefundSettlement:
    """A refund of `refund_minor` of `target` to `destination`, decided.

    `payment`: the target's payment when the refund goes to the client's balance, the only
    refund SC-7 deducts from; None for any other destination. Raises ValueError as
    `plan_refund` does.
    """
    plan = plan_refund(
        target,
        refund_minor,
        small_refund_threshold_minor=0 if payment is None else fees.small_refund_threshold_minor,
        processor_fee_refunded=payment is not None and payment.processor_fee_refunded_minor > 0,
    )
    deducted = plan.processor_fee_deducted_minor
    after = dataclasses.replace(
        contract, refunded_total_minor=contract.refunded_total_minor + refund_minor
    )
    hides = hides_reviews(after, reviews)
    return RefundSettlement(
        plan=plan,
        legs=refund_legs(plan, creator_id=contract.creator_id, destination=destination),
        target=refunded_target(target, plan),
        contract=dataclasses.replace(after, reviews_hidden=True) if hides else after,
        payment=(
            dataclasses.replace(
                payment, deducted_from_client_minor=payment.deducted_from_client_minor + deducted
            )
            if payment is not None and deducted
            else None
        ),
        hides_reviews=hides,
    )
