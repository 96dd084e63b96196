"""The refund engine's pure half (`policy.rules.refunds`): SC-5 clawback, SC-6 fee reversal, SC-7
deduction, CC-12 fee-free refunds, to the cent, without a database."""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import TransferCode
from messages.inbound import ContractOpened, MilestoneFunded
from policy.config import Fees, load_policies
from policy.outcomes import Rejected
from policy.rules.contracts import open_contract
from policy.rules.legs import Leg
from policy.rules.milestones import fund_milestone, release_milestone
from policy.rules.refunds import RefundPlan, plan_refund, refund_legs, refunded_target
from policy.state import ContractState, TargetState

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
POLICIES = load_policies()
SPECTRUM = POLICIES.get("spectrum").fees
CADCROWD = POLICIES.get("cadcrowd").fees


def _contract(policy: str = "spectrum") -> ContractState:
    data = ContractOpened(
        contract_id="c1", kind="fixed", client_id="ana", creator_id="ben", currency="USD"
    )
    contract = open_contract(None, data, policy, AT)
    assert isinstance(contract, ContractState)
    return contract


def _funded(amount: int, fees: Fees = SPECTRUM, processor_fee: int = 0) -> TargetState:
    data = MilestoneFunded(
        contract_id="c1",
        milestone_id="m1",
        payment_id="p1",
        amount_minor=amount,
        processor_fee_minor=processor_fee,
    )
    funding = fund_milestone(_contract(), data, fees, AT, existing=None, payment=None)
    assert not isinstance(funding, Rejected)
    return funding.milestone


def _released(milestone: TargetState) -> TargetState:
    release = release_milestone(_contract(), milestone, AT + timedelta(days=3))
    assert not isinstance(release, Rejected)
    return release.milestone


def _moves(legs: list[Leg]) -> list[tuple[str, str, int, TransferCode]]:
    return [(leg.debit, leg.credit, leg.amount_minor, leg.code) for leg in legs if leg.amount_minor]


def _net(legs: list[Leg]) -> Counter[str]:
    """Each account's change (credits - debits) from the legs."""
    net: Counter[str] = Counter()
    for leg in legs:
        net[leg.credit] += leg.amount_minor
        net[leg.debit] -= leg.amount_minor
    return net


def test_sc6_full_refund_after_release_gives_client_520_creator_460_platform_60() -> None:
    """SC-6, the seed's worked example: $500 milestone, 4% client fee, 8% creator fee,
    released, then refunded in full."""
    milestone = _released(_funded(50000))
    plan = plan_refund(milestone, 50000)
    legs = refund_legs(plan, creator_id="ben", destination="user:ana")
    net = _net(legs)
    assert net["user:ana"] == 52000
    assert net["user:ben"] == -46000
    assert net["platform:fees"] == -6000
    assert _moves(legs) == [
        ("user:ben", "user:ana", 46000, TransferCode.CLAWBACK),
        ("platform:fees", "user:ana", 4000, TransferCode.CREATOR_FEE_REVERSAL),
        ("platform:fees", "user:ana", 2000, TransferCode.CLIENT_FEE_REVERSAL),
    ]
    assert plan.paid_out_minor == 52000
    assert plan.clawed_from_creator_minor == 46000


def test_sc2_escrow_refund_reverses_client_fee_and_waives_uncharged_creator_fee() -> None:
    """SC-2 / SC-6 on an unreleased milestone: escrow pays r, fees pay the client fee share;
    the creator fee, never charged, is reversed on paper only."""
    milestone = _funded(50000)
    plan = plan_refund(milestone, 12500)
    assert plan.from_escrow_minor == 12500
    assert plan.clawed_back_minor == 0
    assert plan.client_fee_reversed_minor == 500
    assert plan.creator_fee_waived_minor == 1000
    assert plan.creator_fee_reversed_minor == 0
    assert _moves(refund_legs(plan, creator_id="ben", destination="user:ana")) == [
        ("escrow:m1", "user:ana", 12500, TransferCode.REFUND),
        ("platform:fees", "user:ana", 500, TransferCode.CLIENT_FEE_REVERSAL),
    ]
    after = refunded_target(milestone, plan)
    assert after.held_in_escrow_minor == 37500
    assert after.creator_fee_reversed_minor == 1000
    assert after.status == "funded"


def test_sc6_refund_from_escrow_then_release_then_clawback_settles_everyone_to_zero() -> None:
    """SC-6 across a lifecycle: a partial refund from escrow lowers the creator fee charged
    at release, and the final clawback reverses exactly what is left of both fees."""
    first = plan_refund(_funded(50000), 10000)
    milestone = refunded_target(_funded(50000), first)
    release = release_milestone(_contract(), milestone, AT + timedelta(days=1))
    assert not isinstance(release, Rejected)
    assert release.creator_fee_minor == 3200  # 8% of the 400.00 released
    second = plan_refund(release.milestone, 40000)
    assert second.from_escrow_minor == 0
    assert second.creator_fee_reversed_minor == 3200
    assert second.client_fee_reversed_minor == 1600
    net = _net(
        [
            *refund_legs(first, creator_id="ben", destination="user:ana"),
            *release.legs,
            *refund_legs(second, creator_id="ben", destination="user:ana"),
        ]
    )
    assert net["user:ana"] == 52000
    assert net["user:ben"] == 0
    assert net["platform:fees"] == -2000  # what funding put there: nothing is kept
    assert refunded_target(release.milestone, second).status == "refunded"


def test_sc6_fee_reversal_rounds_half_to_even() -> None:
    """SC-6: 0.5 of a cent rounds to even: 0 at the first tie, 2 at the next."""
    milestone = dataclasses.replace(_funded(1000), client_fee_minor=5)
    first = plan_refund(milestone, 100)  # 5 x 100 / 1000 = 0.5 -> 0
    assert first.client_fee_reversed_minor == 0
    second = plan_refund(refunded_target(milestone, first), 200)  # 5 x 300 / 1000 = 1.5 -> 2
    assert second.client_fee_reversed_minor == 2


@given(
    amount=st.integers(min_value=1, max_value=10_000_000),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=6),
    released=st.booleans(),
)
def test_sc6_partial_refunds_that_add_up_to_the_whole_reverse_exactly_the_whole_fee(
    amount: int, cuts: list[int], released: bool
) -> None:
    """SC-6 cumulative rounding: however a refund is sliced, from escrow or clawed back, the
    slices' reversals sum to the fees, to the cent."""
    points = sorted({0, amount, *(amount * cut // 10_000 for cut in cuts)})
    milestone = _funded(amount)
    if released:
        milestone = _released(milestone)
    start = milestone
    client_fee = creator_fee = 0
    for low, high in itertools.pairwise(points):
        plan = plan_refund(milestone, high - low)
        client_fee += plan.client_fee_reversed_minor
        creator_fee += plan.creator_fee_reversed_minor + plan.creator_fee_waived_minor
        milestone = refunded_target(milestone, plan)
    assert client_fee == start.client_fee_minor
    assert creator_fee == start.creator_fee_minor
    assert milestone.status == "refunded"
    assert milestone.refundable_minor == 0


def test_sc7_small_refund_deducts_the_processor_fee_share() -> None:
    """SC-7: r below the threshold carries round_half_even(pf x r / amount)."""
    milestone = _funded(10000, processor_fee=320)
    plan = plan_refund(milestone, 1500, small_refund_threshold_minor=2000)
    assert plan.processor_fee_deducted_minor == 48  # 320 x 1500 / 10000
    assert plan.net_paid_out_minor == 1500 + 60 - 48
    legs = refund_legs(plan, creator_id="ben", destination="user:ana")
    assert _moves(legs)[-1] == (
        "user:ana",
        "platform:processor_fees",
        48,
        TransferCode.PROCESSOR_FEE_DEDUCTION,
    )


@pytest.mark.parametrize(
    ("refund_minor", "threshold", "fee_refunded"),
    [
        (2000, 2000, False),  # not below the threshold
        (1500, 2000, True),  # the processor already refunded its fee
        (1500, 0, False),  # no threshold: a chargeback, or cadcrowd (CC-12)
    ],
)
def test_sc7_no_deduction_at_or_above_the_threshold_or_once_the_fee_came_back(
    refund_minor: int, threshold: int, fee_refunded: bool
) -> None:
    """SC-7: the processor fee is the platform's cost except on small refunds."""
    plan = plan_refund(
        _funded(10000, processor_fee=320),
        refund_minor,
        small_refund_threshold_minor=threshold,
        processor_fee_refunded=fee_refunded,
    )
    assert plan.processor_fee_deducted_minor == 0


def test_cc12_cadcrowd_charges_no_fees_so_a_refund_is_exactly_r() -> None:
    """CC-12: no client fee, no creator fee, no deduction: the client gets r back."""
    milestone = _released(_funded(2300, CADCROWD, processor_fee=97))
    plan = plan_refund(
        milestone, 1000, small_refund_threshold_minor=CADCROWD.small_refund_threshold_minor
    )
    assert _moves(refund_legs(plan, creator_id="ben", destination="user:ana")) == [
        ("user:ben", "user:ana", 1000, TransferCode.CLAWBACK)
    ]


def test_cc12_a_policy_file_may_set_cadcrowd_fees_and_sc6_then_applies() -> None:
    """CC-12: with fees set, SC-6's reversal applies as written."""
    fees = Fees(client_fee_bps=500, creator_fee_bps=1000, small_refund_threshold_minor=0)
    plan = plan_refund(_released(_funded(20000, fees)), 20000)
    assert (plan.client_fee_reversed_minor, plan.creator_fee_reversed_minor) == (1000, 2000)


def test_sc11_chargeback_destination_receives_the_refund_instead_of_the_client() -> None:
    """SC-11 reuses the engine: the refund pays `platform:chargebacks`, never the client."""
    plan = plan_refund(_funded(50000), 50000)
    legs = refund_legs(plan, creator_id="ben", destination="platform:chargebacks")
    assert _net(legs)["platform:chargebacks"] == 52000
    assert "user:ana" not in _net(legs)


@pytest.mark.parametrize("refund_minor", [0, -1, 50001])
def test_a_refund_outside_what_is_left_is_a_programming_error(refund_minor: int) -> None:
    with pytest.raises(ValueError, match="not within"):
        plan_refund(_funded(50000), refund_minor)


def test_refund_plan_parts_add_up() -> None:
    """r = from escrow + clawed from the creator + creator fee reversed, always."""
    plan: RefundPlan = plan_refund(_released(_funded(33333)), 11111)
    assert (
        plan.from_escrow_minor + plan.clawed_from_creator_minor + plan.creator_fee_reversed_minor
        == plan.refund_minor
    )
