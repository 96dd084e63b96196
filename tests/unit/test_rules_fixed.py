"""The pure rules of fixed contracts: milestones (SC-1, SC-4), requests (SC-2, SC-3, SC-13,
CC-2, CC-3, CC-4), disputes (SC-3, SC-4, SC-14, CC-8, CC-10) and reviews (CC-6)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from ledger import TransferCode
from messages.inbound import (
    Approver,
    ContractKind,
    ContractOpened,
    MilestoneFunded,
    RefundApproved,
)
from policy.config import PolicyConfig, load_policies
from policy.outcomes import Rejected
from policy.rules.contracts import close_contract, open_contract
from policy.rules.disputes import (
    Settlement,
    mark_overdue,
    open_dispute,
    overdue_at,
    resolved,
    settle_dispute,
)
from policy.rules.milestones import (
    finalize_milestone,
    fund_milestone,
    release_milestone,
    start_work,
)
from policy.rules.refund_requests import (
    AskCreator,
    AutomaticRefund,
    OpenDispute,
    approval_refusal_of,
    decline_request,
    route_request,
)
from policy.rules.reviews import hides_reviews
from policy.state import ContractState, DisputeState, RefundRequestState, TargetState

POLICIES = load_policies()
SPECTRUM = POLICIES.get("spectrum")
CADCROWD = POLICIES.get("cadcrowd")
FUNDED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


def _contract(
    policy: PolicyConfig = SPECTRUM, kind: ContractKind = "fixed", jurisdiction: str | None = None
) -> ContractState:
    data = ContractOpened(
        contract_id="c1",
        kind=kind,
        client_id="ana",
        creator_id="ben",
        currency="USD",
        client_jurisdiction=jurisdiction,
    )
    contract = open_contract(None, data, policy.name, FUNDED - DAY)
    assert isinstance(contract, ContractState)
    return contract


def _funding(
    contract: ContractState, amount: int, milestone_id: str = "m1", payment_id: str = ""
) -> MilestoneFunded:
    return MilestoneFunded(
        contract_id=contract.contract_id,
        milestone_id=milestone_id,
        payment_id=payment_id or f"p-{milestone_id}",
        amount_minor=amount,
        processor_fee_minor=175,
    )


def _funded(
    contract: ContractState, amount: int = 50000, policy: PolicyConfig = SPECTRUM
) -> tuple[ContractState, TargetState]:
    funding = fund_milestone(
        contract, _funding(contract, amount), policy.fees, FUNDED, existing=None, payment=None
    )
    assert not isinstance(funding, Rejected)
    return funding.contract, funding.milestone


def _released(contract: ContractState, milestone: TargetState, at: datetime) -> TargetState:
    release = release_milestone(contract, milestone, at)
    assert not isinstance(release, Rejected)
    return release.milestone


def _reason(outcome: object) -> str:
    assert isinstance(outcome, Rejected), outcome
    return outcome.reason


# Milestones ---------------------------------------------------------------------------------


def test_sc1_funding_puts_the_amount_in_escrow_and_the_client_fee_in_fees() -> None:
    """SC-1: the card pays amount + client fee; escrow holds the amount."""
    contract = _contract()
    funding = fund_milestone(
        contract, _funding(contract, 50000), SPECTRUM.fees, FUNDED, existing=None, payment=None
    )
    assert not isinstance(funding, Rejected)
    assert [(leg.debit, leg.credit, leg.amount_minor, leg.code) for leg in funding.legs] == [
        ("external:card", "escrow:m1", 50000, TransferCode.FUNDING),
        ("external:card", "platform:fees", 2000, TransferCode.CLIENT_FEE),
        ("platform:processor_fees", "external:processor", 175, TransferCode.PROCESSOR_FEE),
    ]
    assert funding.milestone.held_in_escrow_minor == 50000
    assert funding.milestone.creator_fee_minor == 4000
    assert funding.payment.charge_total_minor == 52000
    assert funding.contract.paid_total_minor == 50000


def test_sc1_one_payment_may_fund_two_milestones_of_one_contract() -> None:
    contract = _contract()
    first = fund_milestone(
        contract, _funding(contract, 50000), SPECTRUM.fees, FUNDED, existing=None, payment=None
    )
    assert not isinstance(first, Rejected)
    second = fund_milestone(
        first.contract,
        _funding(contract, 10000, "m2", payment_id="p-m1"),
        SPECTRUM.fees,
        FUNDED,
        existing=None,
        payment=first.payment,
    )
    assert not isinstance(second, Rejected)
    assert second.payment.charge_total_minor == 52000 + 10400
    assert second.payment.processor_fee_minor == 350
    assert second.contract.paid_total_minor == 60000


@pytest.mark.parametrize("case", ["hourly", "closed", "again", "other_contract_payment"])
def test_sc1_funding_refusals(case: str) -> None:
    contract = _contract(kind="hourly" if case == "hourly" else "fixed")
    if case == "closed":
        closed = close_contract(contract, FUNDED - SECOND)
        assert isinstance(closed, ContractState)
        contract = closed
    existing = _funded(_contract())[1] if case == "again" else None
    payment = None
    if case == "other_contract_payment":
        other = fund_milestone(
            _contract(), _funding(contract, 100), SPECTRUM.fees, FUNDED, existing=None, payment=None
        )
        assert not isinstance(other, Rejected)
        payment = dataclasses.replace(other.payment, contract_id="c2")
    outcome = fund_milestone(
        contract,
        _funding(contract, 50000),
        SPECTRUM.fees,
        FUNDED,
        existing=existing,
        payment=payment,
    )
    assert _reason(outcome) == "invalid_state"


def test_sc1_a_funding_charged_before_the_close_is_accepted_when_it_arrives_after_it() -> None:
    """SC-1, judged by the events' time: the close was handled first, the funding happened
    first."""
    closed = close_contract(_contract(), FUNDED + SECOND)
    assert isinstance(closed, ContractState)
    funding = fund_milestone(
        closed, _funding(closed, 50000), SPECTRUM.fees, FUNDED, existing=None, payment=None
    )
    assert not isinstance(funding, Rejected)
    assert funding.milestone.held_in_escrow_minor == 50000


def test_sc1_release_pays_the_creator_the_amount_less_the_creator_fee() -> None:
    """SC-1: escrow -> creator 460.00, escrow -> fees 40.00."""
    contract, milestone = _funded(_contract())
    release = release_milestone(contract, milestone, FUNDED + DAY)
    assert not isinstance(release, Rejected)
    assert [(leg.debit, leg.credit, leg.amount_minor) for leg in release.legs] == [
        ("escrow:m1", "user:ben", 46000),
        ("escrow:m1", "platform:fees", 4000),
    ]
    assert release.milestone.status == "released"
    assert release.milestone.held_in_escrow_minor == 0


def test_sc1_release_refusals_released_twice_or_frozen() -> None:
    """SC-1 / SC-11: no second release; a frozen escrow releases nothing."""
    contract, milestone = _funded(_contract())
    released = _released(contract, milestone, FUNDED + DAY)
    assert _reason(release_milestone(contract, released, FUNDED + 2 * DAY)) == "invalid_state"
    frozen = dataclasses.replace(milestone, frozen=True)
    assert _reason(release_milestone(contract, frozen, FUNDED + DAY)) == "frozen"
    stranger = dataclasses.replace(contract, contract_id="c2")
    assert _reason(release_milestone(stranger, milestone, FUNDED + DAY)) == "invalid_state"


def test_sc2_earliest_work_start_counts() -> None:
    contract, milestone = _funded(_contract())
    started = start_work(contract, milestone, FUNDED + 2 * DAY)
    assert isinstance(started, TargetState)
    assert start_work(contract, started, FUNDED + 3 * DAY) is None
    earlier = start_work(contract, started, FUNDED + DAY)
    assert isinstance(earlier, TargetState)
    assert earlier.work_started_at == FUNDED + DAY


def test_sc4_finalize_marks_a_released_milestone_final_and_skips_a_refunded_one() -> None:
    """SC-4: at the deadline a released milestone is final."""
    contract, milestone = _funded(_contract())
    released = _released(contract, milestone, FUNDED + DAY)
    final = finalize_milestone(released, FUNDED + 31 * DAY)
    assert final is not None
    assert (final.status, final.final_at) == ("final", FUNDED + 31 * DAY)
    assert finalize_milestone(dataclasses.replace(released, status="refunded"), FUNDED) is None


# Refund requests ----------------------------------------------------------------------------


def _route(
    contract: ContractState,
    target: TargetState,
    at: datetime,
    policy: PolicyConfig = SPECTRUM,
    amount: int = 50000,
    *,
    dispute_open: bool = False,
) -> object:
    return route_request(contract, target, amount, at, policy, dispute_open=dispute_open)


def test_sc2_request_before_work_started_is_refunded_automatically() -> None:
    """SC-2: funded, unreleased, no work: automatic refund."""
    contract, milestone = _funded(_contract())
    assert _route(contract, milestone, FUNDED + DAY) == AutomaticRefund("automatic")


def test_sc2_frozen_milestone_is_not_refunded() -> None:
    """SC-2 / SC-11: an automatic refund of frozen escrow is refused with `frozen`."""
    contract, milestone = _funded(_contract())
    frozen = dataclasses.replace(milestone, frozen=True)
    assert _reason(_route(contract, frozen, FUNDED + DAY)) == "frozen"


def test_sc3_request_after_work_started_opens_a_dispute() -> None:
    """SC-3: work started: no money moves, a dispute opens."""
    contract, milestone = _funded(_contract())
    started = dataclasses.replace(milestone, work_started_at=FUNDED + DAY)
    assert _route(contract, started, FUNDED + 2 * DAY) == OpenDispute()


def test_sc3_work_started_after_the_request_does_not_count() -> None:
    """SC-3 judged at the request's own time: a later start, reported first, is ignored."""
    contract, milestone = _funded(_contract())
    started = dataclasses.replace(milestone, work_started_at=FUNDED + 3 * DAY)
    assert _route(contract, started, FUNDED + 2 * DAY) == AutomaticRefund("automatic")


def test_sc13_cooling_off_refunds_automatically_even_after_work_started() -> None:
    """SC-13: a German client within 14 days of funding: SC-2 applies after work started."""
    contract, milestone = _funded(_contract(jurisdiction="DE"))
    started = dataclasses.replace(milestone, work_started_at=FUNDED + DAY)
    assert _route(contract, started, FUNDED + 14 * DAY) == AutomaticRefund("cooling_off")
    assert _route(contract, started, FUNDED + 14 * DAY + SECOND) == OpenDispute()


def test_sc4_request_on_released_money_opens_a_dispute() -> None:
    """SC-4: "to get any of that money back, the client needs to open a dispute"."""
    contract, milestone = _funded(_contract())
    released = _released(contract, milestone, FUNDED + DAY)
    assert _route(contract, released, FUNDED + 2 * DAY) == OpenDispute()


def test_cc2_cadcrowd_request_goes_to_the_creator_and_past_180_days_to_support() -> None:
    """CC-2 / CC-3: the request waits for the creator, or for support from day 181."""
    contract, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    assert _route(contract, milestone, FUNDED + DAY, CADCROWD) == AskCreator(needs_support=False)
    late = FUNDED + 181 * DAY
    assert _route(contract, milestone, late, CADCROWD) == AskCreator(needs_support=True)
    expired = FUNDED + 365 * DAY + SECOND
    assert _reason(_route(contract, milestone, expired, CADCROWD)) == "window_expired"


def test_cc4_request_beyond_the_contract_total_or_the_target_is_refused() -> None:
    """CC-4: never beyond the contract's paid value net of refunds; exceeds_refundable beyond
    what is left of the target."""
    contract, first = _funded(_contract(), 30000)
    funding = fund_milestone(
        contract,
        _funding(contract, 20000, "m2"),
        SPECTRUM.fees,
        FUNDED,
        existing=None,
        payment=None,
    )
    assert not isinstance(funding, Rejected)
    contract = funding.contract
    assert _reason(_route(contract, first, FUNDED, amount=50001)) == "exceeds_contract_total"
    assert _reason(_route(contract, first, FUNDED, amount=30001)) == "exceeds_refundable"
    assert _route(contract, first, FUNDED, amount=30000) == AutomaticRefund("automatic")


def test_one_workflow_per_target_a_request_during_an_open_dispute_is_refused() -> None:
    contract, milestone = _funded(_contract())
    assert _reason(_route(contract, milestone, FUNDED, dispute_open=True)) == "invalid_state"


def _approval(amount: int, approved_by: Approver = "creator") -> RefundApproved:
    return RefundApproved(
        contract_id="c1", target_id="m1", amount_minor=amount, approved_by=approved_by
    )


def _request(status: str, target_id: str = "m1") -> RefundRequestState:
    return RefundRequestState(
        request_id="r1",
        contract_id="c1",
        target_id=target_id,
        amount_minor=1000,
        reason="late",
        requested_at=FUNDED,
        status=status,
        decided_at=None,
    )


def test_cc3_approval_by_the_creator_after_180_days_needs_support() -> None:
    """CC-3: `needs_support` for the creator from day 181; support may approve to day 365."""
    contract, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    late = FUNDED + 200 * DAY
    refusal = approval_refusal_of(
        contract, milestone, _approval(1000), late, CADCROWD, request=None
    )
    assert _reason(refusal) == "needs_support"
    assert (
        approval_refusal_of(
            contract, milestone, _approval(1000, "support"), late, CADCROWD, request=None
        )
        is None
    )


@pytest.mark.parametrize(
    ("asked", "amount", "frozen", "expected"),
    [
        (_request("pending"), 1000, False, None),
        (_request("escalated"), 1000, False, None),
        (_request("declined"), 1000, False, "invalid_state"),
        (_request("completed"), 1000, False, "invalid_state"),
        (_request("pending", target_id="m9"), 1000, False, "invalid_state"),
        (None, 50001, False, "exceeds_contract_total"),
        (None, 1000, True, "frozen"),
    ],
)
def test_cc2_approval_refusals(
    asked: RefundRequestState | None, amount: int, frozen: bool, expected: str | None
) -> None:
    """CC-2: an approval settles a request that still waits, within what is left (CC-4)."""
    contract, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    milestone = dataclasses.replace(milestone, frozen=frozen)
    refusal = approval_refusal_of(
        contract, milestone, _approval(amount), FUNDED + DAY, CADCROWD, request=asked
    )
    assert (refusal.reason if refusal else None) == expected


def test_cc2_decline_by_the_creator_or_support_and_escalated_requests_only_by_support() -> None:
    """CC-2 / CC-9: a pending request is declined by either; an escalated one by support."""
    declined = decline_request(_request("pending"), "creator", FUNDED)
    assert isinstance(declined, RefundRequestState)
    assert declined.status == "declined"
    assert _reason(decline_request(_request("escalated"), "creator", FUNDED)) == "invalid_state"
    assert isinstance(decline_request(_request("escalated"), "support", FUNDED), RefundRequestState)
    assert _reason(decline_request(_request("completed"), "support", FUNDED)) == "invalid_state"


# Disputes -----------------------------------------------------------------------------------


def _open(
    contract: ContractState,
    target: TargetState,
    at: datetime,
    policy: PolicyConfig = SPECTRUM,
    existing: DisputeState | None = None,
) -> DisputeState | Rejected:
    return open_dispute(
        contract,
        target,
        at,
        policy,
        dispute_id="d1",
        reason="not as agreed",
        existing=existing,
        dispute_open=False,
    )


def test_cc10_cadcrowd_released_milestone_cannot_be_disputed() -> None:
    """CC-10: released counts as accepted: `already_released`."""
    contract, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    released = _released(contract, milestone, FUNDED + DAY)
    assert _reason(_open(contract, released, FUNDED + 2 * DAY, CADCROWD)) == "already_released"


def test_cc10_cadcrowd_dispute_team_takes_unreleased_escrow() -> None:
    """CC-10: a funded, unreleased milestone can be disputed."""
    contract, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    assert isinstance(_open(contract, milestone, FUNDED + DAY, CADCROWD), DisputeState)


def test_sc4_released_milestone_disputable_until_its_window_closes() -> None:
    """SC-4: released on day 1, contract closed on day 2: disputes until day 31, inclusive,
    judged at the dispute's time (so one that arrives late but happened in time counts)."""
    contract, milestone = _funded(_contract())
    released = _released(contract, milestone, FUNDED + DAY)
    closed = close_contract(contract, FUNDED + 2 * DAY)
    assert isinstance(closed, ContractState)
    assert isinstance(_open(closed, released, FUNDED + 31 * DAY), DisputeState)
    final = finalize_milestone(released, FUNDED + 31 * DAY)
    assert final is not None
    assert isinstance(_open(closed, final, FUNDED + 31 * DAY), DisputeState)
    assert _reason(_open(closed, final, FUNDED + 31 * DAY + SECOND)) == "window_expired"


def test_sc4_open_contract_keeps_the_window_open() -> None:
    """SC-4: a year after release, the contract still open: still disputable."""
    contract, milestone = _funded(_contract())
    released = _released(contract, milestone, FUNDED + DAY)
    assert isinstance(_open(contract, released, FUNDED + 400 * DAY), DisputeState)


def test_cc8_invoice_disputable_until_the_friday_after_its_week() -> None:
    """CC-8: week of Mon 2 Mar 2026: disputes until Fri 13 Mar 23:59:59 UTC."""
    contract = _contract(CADCROWD, kind="hourly")
    contract = dataclasses.replace(contract, paid_total_minor=40000)
    _, milestone = _funded(_contract(CADCROWD), policy=CADCROWD)
    paid = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    invoice = dataclasses.replace(
        milestone,
        target_id="inv-1",
        kind="invoice",
        amount_minor=40000,
        period_start=date(2026, 3, 2),
        paid_at=paid,
        released_at=paid,
        released_minor=40000,
        status="paid",
    )
    friday = datetime(2026, 3, 13, 23, 59, 59, tzinfo=UTC)
    assert isinstance(_open(contract, invoice, friday, CADCROWD), DisputeState)
    assert _reason(_open(contract, invoice, friday + SECOND, CADCROWD)) == "window_expired"


def test_dispute_refusals_same_id_or_nothing_left() -> None:
    contract, milestone = _funded(_contract())
    dispute = _open(contract, milestone, FUNDED)
    assert isinstance(dispute, DisputeState)
    assert _reason(_open(contract, milestone, FUNDED, existing=dispute)) == "invalid_state"
    refunded = dataclasses.replace(milestone, refunded_minor=50000, status="refunded")
    assert _reason(_open(contract, refunded, FUNDED)) == "invalid_state"


def test_sc3_decisions_settle_the_target() -> None:
    """SC-3: full refund = all that is left; partial = amount then release the rest;
    release = nothing refunded."""
    contract, milestone = _funded(_contract())
    dispute = _open(contract, milestone, FUNDED)
    assert isinstance(dispute, DisputeState)
    assert settle_dispute(dispute, contract, milestone, "full_refund", None) == Settlement(
        50000, release_rest=False
    )
    assert settle_dispute(dispute, contract, milestone, "partial_refund", 15000) == Settlement(
        15000, release_rest=True
    )
    assert settle_dispute(dispute, contract, milestone, "release_to_creator", None) == Settlement(
        0, release_rest=True
    )
    too_much = settle_dispute(dispute, contract, milestone, "partial_refund", 50001)
    assert _reason(too_much) == "exceeds_contract_total"


def test_sc3_a_decision_on_a_resolved_dispute_or_frozen_target_is_refused() -> None:
    """SC-3 / SC-11: decided once; a frozen target is settled after its chargeback."""
    contract, milestone = _funded(_contract())
    dispute = _open(contract, milestone, FUNDED)
    assert isinstance(dispute, DisputeState)
    done = resolved(dispute, "full_refund", 50000, 0, FUNDED + DAY)
    assert _reason(settle_dispute(done, contract, milestone, "full_refund", None)) == (
        "invalid_state"
    )
    frozen = dataclasses.replace(milestone, frozen=True)
    assert _reason(settle_dispute(dispute, contract, frozen, "full_refund", None)) == "frozen"


def test_sc14_dispute_is_overdue_after_the_sla_once_and_never_when_resolved() -> None:
    """SC-14: due at opened_at + 5 days; reported once; a resolved dispute never."""
    contract, milestone = _funded(_contract())
    dispute = _open(contract, milestone, FUNDED)
    assert isinstance(dispute, DisputeState)
    assert overdue_at(dispute, SPECTRUM.windows) == FUNDED + 5 * DAY
    overdue = mark_overdue(dispute, FUNDED + 5 * DAY)
    assert overdue is not None
    assert mark_overdue(overdue, FUNDED + 6 * DAY) is None
    assert mark_overdue(resolved(dispute, "release_to_creator", 0, 0, FUNDED), FUNDED) is None


# Reviews ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "refunded", "hidden", "expected"),
    [
        (50000, 47501, False, True),  # 24.99 left
        (50000, 47500, False, False),  # exactly 25.00 left: not under
        (50000, 50000, True, False),  # hidden already: once per contract
    ],
)
def test_cc6_reviews_hidden_once_when_net_value_falls_under_25_dollars(
    paid: int, refunded: int, hidden: bool, expected: bool
) -> None:
    """CC-6: at the first refund that leaves the contract under $25.00."""
    contract = dataclasses.replace(
        _contract(CADCROWD),
        paid_total_minor=paid,
        refunded_total_minor=refunded,
        reviews_hidden=hidden,
    )
    assert hides_reviews(contract, CADCROWD.reviews) is expected
