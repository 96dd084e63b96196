"""Chargebacks (SC-11, SC-12): a card issuer takes money back from the platform.

Opening one freezes the escrow of what the charge paid for; the resolution either settles it
as an SC-6 refund (client won) or returns the money and passes the issuer's fee to the client
(client lost). The split of a won chargeback into per-target refunds is exact to the cent:
see `split_settlement`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from messages.inbound import ChargebackOpened, ChargebackOutcome
from policy.outcomes import Rejected
from policy.rules.refunds import plan_refund
from policy.state import ChargebackState, PaymentState, TargetState


def open_chargeback(
    existing: ChargebackState | None,
    data: ChargebackOpened,
    payment: PaymentState,
    earlier: Sequence[ChargebackState],
    at: datetime,
) -> ChargebackState | Rejected:
    """The new chargeback, or why not.

    `earlier` are the payment's chargebacks so far. One charge is disputed once at a time (a
    second open one would freeze and settle the same escrow twice), and what won chargebacks
    took plus this one can never exceed what the card was charged.
    """
    if existing is not None:
        return Rejected("invalid_state", "a chargeback with this id is already recorded")
    if any(chargeback.status == "open" for chargeback in earlier):
        return Rejected("invalid_state", f"payment {payment.payment_id} has an open chargeback")
    taken = sum(cb.amount_minor for cb in earlier if cb.outcome == "client_won")
    if taken + data.amount_minor > payment.charge_total_minor:
        return Rejected(
            "exceeds_refundable",
            f"{data.amount_minor} disputed, {payment.charge_total_minor - taken}"
            " of the charge is left",
        )
    return ChargebackState(
        chargeback_id=data.chargeback_id,
        payment_id=data.payment_id,
        amount_minor=data.amount_minor,
        issuer_fee_minor=data.issuer_fee_minor,
        opened_at=at,
        status="open",
        outcome=None,
        resolved_at=None,
    )


def resolve_chargeback(
    chargeback: ChargebackState, outcome: ChargebackOutcome, at: datetime
) -> ChargebackState | Rejected:
    if chargeback.status != "open":
        return Rejected("invalid_state", f"already resolved: {chargeback.outcome}")
    return dataclasses.replace(chargeback, status="resolved", outcome=outcome, resolved_at=at)


def accepted_in_full(targets: Sequence[TargetState]) -> bool:
    """SC-12: the charge paid only milestones, and every one of them was released in full."""
    return bool(targets) and all(
        target.kind == "milestone" and target.released_minor == target.amount_minor
        for target in targets
    )


@dataclass(frozen=True, slots=True)
class SettlementShare:
    """The refund `refund_minor` (fees excluded) of one target that a won chargeback makes."""

    target_id: str
    refund_minor: int
    credited_minor: int
    """What that refund returns: `refund_minor` plus the client fee it reverses (SC-6)."""


def credited_by(target: TargetState, refund_minor: int) -> int:
    """What the refund engine pays out for a refund of `refund_minor` on `target`.

    The refund plus the client fee it reverses (SC-6), wherever the money comes from: on
    released money the creator and the creator-fee reversal together make up the refund.
    A chargeback's settlement is never a refund to the client's balance, so SC-7 deducts
    nothing from it.
    """
    return plan_refund(target, refund_minor).paid_out_minor if refund_minor else 0


def split_settlement(
    targets: Sequence[TargetState], amount_minor: int, charge_total_minor: int
) -> tuple[list[SettlementShare], int]:
    """The refunds that settle a won chargeback of `amount_minor`, and what they leave short.

    Each target is refunded the ratio amount / charge total of its own amount (SC-11). Two
    roundings make the naive split miss the disputed amount by a cent or so: the refund's and
    the client fee's (SC-6 rounds the cumulative reversal, not each slice). So the refunds
    start at the exact ratio rounded down and are then moved one cent at a time, the target
    furthest from its exact share first, until their credits add up to `amount_minor`. One
    cent of refund moves a credit by one or two cents (a fee rate is below 100%), so the sum
    can still fall one cent short when every step left is two cents; and a refund can
    neither exceed what a target has left (money refunded earlier) nor take over another
    target's share. The second value returned is that
    shortfall, which the caller takes from the client's balance: the card gave the client
    more than the policy refunds.
    """
    refunds = {
        target.target_id: min(
            target.refundable_minor, target.amount_minor * amount_minor // charge_total_minor
        )
        for target in targets
    }
    # No target goes past its exact share rounded up: a share refunded before stays short
    # rather than being loaded onto another target.
    ceilings = {
        target.target_id: min(
            target.refundable_minor, -(-target.amount_minor * amount_minor // charge_total_minor)
        )
        for target in targets
    }

    def total() -> int:
        return sum(credited_by(target, refunds[target.target_id]) for target in targets)

    def excess(target: TargetState) -> int:
        # Scaled by the charge total, so the comparison stays in integers.
        return refunds[target.target_id] * charge_total_minor - target.amount_minor * amount_minor

    while total() > amount_minor:
        target = max((t for t in targets if refunds[t.target_id] > 0), key=excess)
        refunds[target.target_id] -= 1

    while True:
        gap = amount_minor - total()
        if gap <= 0:
            break
        steps = [
            target
            for target in targets
            if refunds[target.target_id] < ceilings[target.target_id]
            and credited_by(target, refunds[target.target_id] + 1)
            - credited_by(target, refunds[target.target_id])
            <= gap
        ]
        if not steps:
            break
        refunds[min(steps, key=excess).target_id] += 1

    shares = [
        SettlementShare(
            target_id=target.target_id,
            refund_minor=refunds[target.target_id],
            credited_minor=credited_by(target, refunds[target.target_id]),
        )
        for target in targets
    ]
    return shares, amount_minor - sum(share.credited_minor for share in shares)
