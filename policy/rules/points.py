"""Points (SC-10): awards, their claw-back when the milestone they were earned on is
refunded, and cash-outs that only a fraud claim can reverse.

Points are whole units of the currency `PTS`. A balance may go negative (points clawed back
after they were cashed out): the user then owes points.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from messages.inbound import PointsAwarded, PointsCashoutPaid
from policy.money import cumulative_reversal_minor
from policy.outcomes import Rejected
from policy.state import CashoutState, PointAwardState

POINTS_CURRENCY = "PTS"
POINTS_SOURCE = "external:points"
"""Where awarded points come from and where spent or clawed-back points go."""


def points_account(user_id: str) -> str:
    return f"points:{user_id}"


def new_award(award_id: str, data: PointsAwarded, at: datetime) -> PointAwardState:
    return PointAwardState(
        award_id=award_id,
        user_id=data.user_id,
        milestone_id=data.milestone_id,
        points=data.points,
        clawed_back_points=0,
        awarded_at=at,
    )


def clawback_due(award: PointAwardState, refunded_so_far_minor: int, amount_minor: int) -> int:
    """Points still to claw back from `award` once `refunded_so_far` of `amount` is refunded.

    SC-6's cumulative rounding: the total clawed back is round_half_even(points x refunded so
    far / amount), so refunds that add up to the whole milestone claw back every point. An
    award on a milestone that is not refunded at all owes nothing; activity points (no
    milestone) are never reached by a refund, since only a milestone's refund calls this.
    """
    total = cumulative_reversal_minor(award.points, refunded_so_far_minor, amount_minor)
    # Refunds only ever grow, so the running total never falls below what was taken.
    return max(0, total - award.clawed_back_points)


def pay_cashout(
    existing: CashoutState | None, data: PointsCashoutPaid, balance: int, at: datetime
) -> CashoutState | Rejected:
    """A paid cash-out, or why not: an id seen before, or fewer points than it takes."""
    if existing is not None:
        return Rejected("invalid_state", "a cash-out with this id was already paid")
    if balance < data.points:
        return Rejected("insufficient_balance", f"{balance} points held, {data.points} asked")
    return CashoutState(
        cashout_id=data.cashout_id,
        user_id=data.user_id,
        points=data.points,
        paid_at=at,
        reversed_at=None,
        fraud_claim_id=None,
    )


def reverse_cashout(
    cashout: CashoutState, fraud_claim_id: str, at: datetime
) -> CashoutState | Rejected:
    """A paid cash-out is final except through a fraud claim, and then only once."""
    if cashout.reversed_at is not None:
        return Rejected("invalid_state", f"already reversed by claim {cashout.fraud_claim_id}")
    return dataclasses.replace(cashout, reversed_at=at, fraud_claim_id=fraud_claim_id)
