"""SC-11 and SC-12: opening, resolving, and the exact split of a won chargeback."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from messages.inbound import ChargebackOpened
from policy.money import cumulative_reversal_minor, fee_minor
from policy.outcomes import Rejected
from policy.rules.chargebacks import (
    accepted_in_full,
    credited_by,
    open_chargeback,
    resolve_chargeback,
    split_settlement,
)
from policy.state import ChargebackState, PaymentState, TargetState

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLIENT_BPS = 400
CREATOR_BPS = 800


def _target(target_id: str, amount: int, *, refunded: int = 0, released: int = 0) -> TargetState:
    client_fee = fee_minor(amount, CLIENT_BPS)
    return TargetState(
        target_id=target_id,
        kind="milestone",
        contract_id="c1",
        payment_id="p1",
        currency="USD",
        amount_minor=amount,
        client_fee_minor=client_fee,
        creator_fee_minor=fee_minor(amount, CREATOR_BPS),
        processor_fee_minor=0,
        paid_at=AT,
        period_start=None,
        work_started_at=None,
        released_at=AT if released else None,
        released_minor=released,
        refunded_minor=refunded,
        client_fee_reversed_minor=cumulative_reversal_minor(client_fee, refunded, amount),
        creator_fee_reversed_minor=0,
        creator_fee_charged_minor=0,
        clawed_back_minor=0,
        status="released" if released else "funded",
        frozen=False,
        final_at=None,
    )


def _payment(charge_total: int) -> PaymentState:
    return PaymentState(
        payment_id="p1",
        contract_id="c1",
        payer_id="u1",
        currency="USD",
        charge_total_minor=charge_total,
        processor_fee_minor=0,
        processor_fee_refunded_minor=0,
        deducted_from_client_minor=0,
        passed_through_minor=0,
        paid_at=AT,
    )


def _opened(amount: int, chargeback_id: str = "cb1") -> ChargebackOpened:
    return ChargebackOpened(
        chargeback_id=chargeback_id, payment_id="p1", amount_minor=amount, issuer_fee_minor=1500
    )


def test_sc11_open_records_an_open_chargeback() -> None:
    opened = open_chargeback(None, _opened(52000), _payment(52000), [], AT)
    assert isinstance(opened, ChargebackState)
    assert (opened.status, opened.amount_minor, opened.issuer_fee_minor) == ("open", 52000, 1500)


def test_sc11_chargebacks_never_take_more_than_the_charge() -> None:
    won = open_chargeback(None, _opened(30000), _payment(52000), [], AT)
    assert isinstance(won, ChargebackState)
    won = dataclasses.replace(won, status="resolved", outcome="client_won")
    refused = open_chargeback(None, _opened(30000, "cb2"), _payment(52000), [won], AT)
    assert isinstance(refused, Rejected)
    assert refused.reason == "exceeds_refundable"
    lost = dataclasses.replace(won, outcome="client_lost")
    again = open_chargeback(None, _opened(30000, "cb2"), _payment(52000), [lost], AT)
    assert isinstance(again, ChargebackState)


def test_sc11_a_charge_has_one_open_chargeback_at_a_time() -> None:
    opened = open_chargeback(None, _opened(100), _payment(52000), [], AT)
    assert isinstance(opened, ChargebackState)
    second = open_chargeback(None, _opened(100, "cb2"), _payment(52000), [opened], AT)
    assert isinstance(second, Rejected)
    assert second.reason == "invalid_state"


def test_sc11_same_id_twice_is_invalid_state() -> None:
    opened = open_chargeback(None, _opened(100), _payment(52000), [], AT)
    assert isinstance(opened, ChargebackState)
    again = open_chargeback(opened, _opened(100), _payment(52000), [opened], AT)
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"


def test_sc11_resolves_once() -> None:
    opened = open_chargeback(None, _opened(100), _payment(52000), [], AT)
    assert isinstance(opened, ChargebackState)
    won = resolve_chargeback(opened, "client_won", AT)
    assert isinstance(won, ChargebackState)
    assert (won.status, won.outcome, won.resolved_at) == ("resolved", "client_won", AT)
    again = resolve_chargeback(won, "client_lost", AT)
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"


def test_sc12_all_milestones_released_in_full_is_accepted_work() -> None:
    assert accepted_in_full([_target("m1", 500, released=500), _target("m2", 300, released=300)])
    assert not accepted_in_full([_target("m1", 500, released=500), _target("m2", 300)])
    assert not accepted_in_full([_target("m1", 500, released=200)])
    assert not accepted_in_full([])
    invoice = dataclasses.replace(_target("i1", 500, released=500), kind="invoice")
    assert not accepted_in_full([invoice])


def test_sc11_whole_charge_refunds_the_whole_milestone() -> None:
    """$500 + $20 charged back in full: refund 500, reverse 20, nothing short."""
    shares, short = split_settlement([_target("m1", 50000)], 52000, 52000)
    assert [(s.refund_minor, s.credited_minor) for s in shares] == [(50000, 52000)]
    assert short == 0


def test_sc11_partial_chargeback_splits_in_ratio() -> None:
    """$130 of a $520 charge is a quarter: refund $125 and reverse $5 of the client fee."""
    shares, short = split_settlement([_target("m1", 50000)], 13000, 52000)
    assert [(s.refund_minor, s.credited_minor) for s in shares] == [(12500, 13000)]
    assert short == 0


def test_sc11_unreachable_cent_is_left_short_not_overpaid() -> None:
    """Amount 100, fee 4: a 12-cent refund credits 12, a 13-cent one 14; 13 cannot be hit."""
    shares, short = split_settlement([_target("m1", 100)], 13, 104)
    assert [(s.refund_minor, s.credited_minor) for s in shares] == [(12, 12)]
    assert short == 1


def test_sc11_money_refunded_before_is_left_short() -> None:
    """Half was already refunded to the balance; the card then gave back the whole charge."""
    target = _target("m1", 50000, refunded=25000)
    shares, short = split_settlement([target], 52000, 52000)
    assert [(s.refund_minor, s.credited_minor) for s in shares] == [(25000, 26000)]
    assert short == 26000


def test_sc11_a_share_refunded_before_is_not_loaded_onto_another_target() -> None:
    """m1 was refunded in full to the balance; the card then gave back half the charge: m2
    gives its half, and m1's half, already paid back once, is what the client owes."""
    targets = [_target("m1", 1_000_000, refunded=1_000_000), _target("m2", 1_000_000)]
    shares, short = split_settlement(targets, 1_040_000, 2_080_000)
    assert {s.target_id: s.refund_minor for s in shares} == {"m1": 0, "m2": 500_000}
    assert short == 520_000


def test_sc11_several_milestones_share_the_chargeback() -> None:
    targets = [_target("m1", 30000), _target("m2", 20000)]
    shares, short = split_settlement(targets, 26000, 52000)
    assert {s.target_id: s.refund_minor for s in shares} == {"m1": 15000, "m2": 10000}
    assert sum(s.credited_minor for s in shares) == 26000
    assert short == 0


@settings(max_examples=300, deadline=None)
@given(
    amounts=st.lists(st.integers(min_value=1, max_value=200_000), min_size=1, max_size=4),
    ratio=st.fractions(min_value=0, max_value=1),
    refunded_parts=st.lists(st.fractions(min_value=0, max_value=1), min_size=4, max_size=4),
)
def test_sc11_split_is_exact_or_short_by_what_cannot_be_refunded(
    amounts: list[int], ratio: object, refunded_parts: list[object]
) -> None:
    """The credits never exceed the chargeback, and each equals the SC-6 refund's payout."""
    from fractions import Fraction

    assert isinstance(ratio, Fraction)
    targets = []
    for index, amount in enumerate(amounts):
        part = refunded_parts[index]
        assert isinstance(part, Fraction)
        targets.append(_target(f"m{index}", amount, refunded=int(amount * part)))
    charge_total = sum(t.amount_minor + t.client_fee_minor for t in targets)
    disputed = max(1, int(charge_total * ratio))
    shares, short = split_settlement(targets, disputed, charge_total)
    by_id = {t.target_id: t for t in targets}
    assert short >= 0
    assert sum(s.credited_minor for s in shares) + short == disputed
    for share in shares:
        target = by_id[share.target_id]
        assert 0 <= share.refund_minor <= target.refundable_minor
        # Never more than the target's own share of the chargeback, rounded up.
        assert share.refund_minor * charge_total < (target.amount_minor * disputed) + charge_total
        assert share.credited_minor == credited_by(target, share.refund_minor)
    if not any(t.refunded_minor for t in targets):
        # Nothing refunded before: only the fee's rounding can leave a cent per target.
        assert short <= len(targets)
