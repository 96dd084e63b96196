"""SC-10: points awards, their proportional claw-back, and final cash-outs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from messages.inbound import PointsAwarded, PointsCashoutPaid
from policy.outcomes import Rejected
from policy.rules.points import clawback_due, new_award, pay_cashout, reverse_cashout
from policy.state import CashoutState, PointAwardState

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _award(points: int, milestone_id: str | None = "m1") -> PointAwardState:
    return new_award(
        "evt-1", PointsAwarded(user_id="u2", points=points, milestone_id=milestone_id), AT
    )


def _claw(award: PointAwardState, refunded_so_far: int, amount: int) -> PointAwardState:
    due = clawback_due(award, refunded_so_far, amount)
    return dataclasses.replace(award, clawed_back_points=award.clawed_back_points + due)


def test_sc10_full_refund_claws_back_every_point() -> None:
    assert clawback_due(_award(100), 50000, 50000) == 100


def test_sc10_partial_refund_claws_back_in_proportion() -> None:
    assert clawback_due(_award(100), 12500, 50000) == 25


def test_sc10_cumulative_rounding_claws_back_exactly_the_whole_award() -> None:
    """Three thirds of a milestone: 33.3 -> 33, 66.7 -> 67 (so 34), then 100 (so 33)."""
    award = _award(100)
    steps = []
    for refunded in (1000, 2000, 3000):
        due = clawback_due(award, refunded, 3000)
        steps.append(due)
        award = dataclasses.replace(award, clawed_back_points=award.clawed_back_points + due)
    assert steps == [33, 34, 33]
    assert award.clawed_back_points == 100


def test_sc10_half_points_round_half_even() -> None:
    """1 point of 3 at half the milestone: 1.5 rounds to 2; 5 points at 1/2: 2.5 rounds to 2."""
    assert clawback_due(_award(3), 500, 1000) == 2
    assert clawback_due(_award(5), 500, 1000) == 2


def test_sc10_nothing_is_due_twice_for_the_same_refund() -> None:
    award = _claw(_award(100), 25000, 50000)
    assert clawback_due(award, 25000, 50000) == 0


def test_sc10_cashout_needs_enough_points() -> None:
    data = PointsCashoutPaid(cashout_id="co1", user_id="u2", points=150)
    refused = pay_cashout(None, data, 149, AT)
    assert isinstance(refused, Rejected)
    assert refused.reason == "insufficient_balance"
    paid = pay_cashout(None, data, 150, AT)
    assert isinstance(paid, CashoutState)
    assert paid.points == 150
    assert paid.reversed_at is None


def test_sc10_cashout_id_seen_before_is_invalid_state() -> None:
    data = PointsCashoutPaid(cashout_id="co1", user_id="u2", points=10)
    paid = pay_cashout(None, data, 100, AT)
    assert isinstance(paid, CashoutState)
    again = pay_cashout(paid, data, 100, AT)
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"


def test_sc10_cashout_reversal_through_a_fraud_claim_happens_once() -> None:
    paid = pay_cashout(None, PointsCashoutPaid(cashout_id="co1", user_id="u2", points=10), 10, AT)
    assert isinstance(paid, CashoutState)
    reversed_ = reverse_cashout(paid, "fc-1", AT + timedelta(days=2))
    assert isinstance(reversed_, CashoutState)
    assert reversed_.fraud_claim_id == "fc-1"
    assert reversed_.reversed_at == AT + timedelta(days=2)
    again = reverse_cashout(reversed_, "fc-2", AT + timedelta(days=3))
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"
