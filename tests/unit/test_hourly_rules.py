"""Pure rules of hourly contracts: paid invoices (CC-1, CC-12), refunds only of paid invoices
(CC-11), escalation to support within the CC-8 deadline (CC-9)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ledger import TransferCode
from messages.inbound import HourlyInvoicePaid
from policy.config import Fees, load_policies
from policy.outcomes import Rejected
from policy.rules.hourly import (
    InvoicePayment,
    escalate,
    escalation_deadline,
    pay_invoice,
)
from policy.rules.legs import Leg
from policy.state import ContractState, PaymentState, RefundRequestState

POLICIES = load_policies()
CADCROWD = POLICIES.get("cadcrowd")
SPECTRUM = POLICIES.get("spectrum")
PERIOD = date(2026, 3, 2)  # Monday; the week ends Sunday 8 March, disputes close Friday 13
PAID_AT = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
FRIDAY_LAST_SECOND = datetime(2026, 3, 13, 23, 59, 59, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 14, 0, 0, 0, tzinfo=UTC)


def contract(kind: str = "hourly", **changes: Any) -> ContractState:
    base = ContractState(
        contract_id="c1",
        kind=kind,
        client_id="client",
        creator_id="creator",
        currency="USD",
        policy="cadcrowd",
        client_jurisdiction=None,
        opened_at=datetime(2026, 3, 1, tzinfo=UTC),
        closed_at=None,
        paid_total_minor=0,
        refunded_total_minor=0,
        reviews_hidden=False,
    )
    return dataclasses.replace(base, **changes)


def invoice_paid(**changes: object) -> HourlyInvoicePaid:
    data: dict[str, object] = {
        "contract_id": "c1",
        "invoice_id": "inv1",
        "period_start": PERIOD,
        "payment_id": "pay1",
        "amount_minor": 50_000,
        "processor_fee_minor": 1_480,
    }
    data.update(changes)
    return HourlyInvoicePaid.model_validate(data)


def paid(fees: Fees = CADCROWD.fees, **changes: object) -> InvoicePayment:
    result = pay_invoice(
        contract(**changes), invoice_paid(), fees, PAID_AT, existing=None, payment=None
    )
    assert isinstance(result, InvoicePayment)
    return result


def test_cc1_cc12_a_cadcrowd_invoice_goes_to_the_creator_whole_with_no_fees() -> None:
    """CC-1, CC-12: no escrow and, under cadcrowd, no fee: the creator gets all of it."""
    result = paid()
    assert [leg for leg in result.legs if leg.amount_minor] == [
        Leg("external:card", "user:creator", 50_000, TransferCode.INVOICE_PAYMENT),
        Leg("platform:processor_fees", "external:processor", 1_480, TransferCode.PROCESSOR_FEE),
    ]
    assert result.invoice.client_fee_minor == result.invoice.creator_fee_minor == 0


def test_cc1_cc12_fees_of_the_preset_apply_to_an_invoice() -> None:
    """CC-1 less the creator fee, client fee to the platform; CC-12 with spectrum's rates."""
    result = paid(SPECTRUM.fees)
    assert result.legs == [
        Leg("external:card", "user:creator", 46_000, TransferCode.INVOICE_PAYMENT),
        Leg("external:card", "platform:fees", 2_000, TransferCode.CLIENT_FEE),
        Leg("external:card", "platform:fees", 4_000, TransferCode.CREATOR_FEE),
        Leg("platform:processor_fees", "external:processor", 1_480, TransferCode.PROCESSOR_FEE),
    ]
    assert result.payment.charge_total_minor == 52_000
    assert result.payment.processor_fee_minor == 1_480
    assert result.payment.payer_id == "client"


def test_cc1_an_invoice_is_recorded_paid_released_in_full_at_payment() -> None:
    """CC-1: nothing is held, so every later refund of it is a clawback from the creator."""
    invoice = paid(SPECTRUM.fees).invoice
    assert (invoice.kind, invoice.status, invoice.period_start) == ("invoice", "paid", PERIOD)
    assert invoice.paid_at == invoice.released_at == PAID_AT
    assert invoice.released_minor == invoice.amount_minor == 50_000
    assert invoice.creator_fee_charged_minor == 4_000
    assert invoice.held_in_escrow_minor == 0
    assert invoice.refundable_minor == 50_000


def test_cc1_paid_invoices_add_their_own_amount_to_the_contracts_paid_total() -> None:
    """CC-1 with CC-4: the contract's paid value counts amounts, fees excluded."""
    assert paid(SPECTRUM.fees, paid_total_minor=7_000).contract.paid_total_minor == 57_000


def test_cc1_fees_round_half_even() -> None:
    fees = Fees(client_fee_bps=250, creator_fee_bps=750, small_refund_threshold_minor=0)
    result = pay_invoice(
        contract(), invoice_paid(amount_minor=1_010), fees, PAID_AT, existing=None, payment=None
    )
    assert isinstance(result, InvoicePayment)
    # 2.5% of 10.10 is 0.2525 -> 25; 7.5% is 0.7575 -> 76.
    assert (result.invoice.client_fee_minor, result.invoice.creator_fee_minor) == (25, 76)
    assert result.legs[0].amount_minor == 1_010 - 76


def test_cc1_an_invoice_on_a_fixed_contract_is_refused() -> None:
    result = pay_invoice(
        contract("fixed"), invoice_paid(), CADCROWD.fees, PAID_AT, existing=None, payment=None
    )
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_state"


def test_cc1_an_invoice_paid_twice_under_two_event_ids_is_refused() -> None:
    first = paid()
    again = pay_invoice(
        contract(), invoice_paid(), CADCROWD.fees, PAID_AT, existing=first.invoice, payment=None
    )
    assert isinstance(again, Rejected)
    assert again.reason == "invalid_state"


def test_cc1_one_card_payment_may_pay_two_invoices_of_a_contract_only() -> None:
    first = paid(SPECTRUM.fees)
    second = pay_invoice(
        contract(),
        invoice_paid(invoice_id="inv2", amount_minor=10_000, processor_fee_minor=300),
        SPECTRUM.fees,
        PAID_AT,
        existing=None,
        payment=first.payment,
    )
    assert isinstance(second, InvoicePayment)
    assert second.payment.charge_total_minor == 52_000 + 10_400
    assert second.payment.processor_fee_minor == 1_780
    elsewhere = dataclasses.replace(first.payment, contract_id="c9")
    refused = pay_invoice(
        contract(), invoice_paid(), SPECTRUM.fees, PAID_AT, existing=None, payment=elsewhere
    )
    assert isinstance(refused, Rejected)
    assert refused.reason == "invalid_state"


def test_cc1_the_last_weeks_invoice_may_be_paid_after_the_contract_closed() -> None:
    closed_wednesday = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert isinstance(paid(closed_at=closed_wednesday), InvoicePayment)
    later_week = pay_invoice(
        contract(closed_at=closed_wednesday),
        invoice_paid(period_start=date(2026, 3, 9)),
        CADCROWD.fees,
        PAID_AT,
        existing=None,
        payment=None,
    )
    assert isinstance(later_week, Rejected)
    assert later_week.reason == "invalid_state"


def declined(**changes: Any) -> RefundRequestState:
    base = RefundRequestState(
        request_id="r1",
        contract_id="c1",
        target_id="inv1",
        amount_minor=10_000,
        reason="hours not worked",
        requested_at=PAID_AT + timedelta(days=1),
        status="declined",
        decided_at=PAID_AT + timedelta(days=2),
    )
    return dataclasses.replace(base, **changes)


def test_cc9_the_escalation_deadline_is_the_cc8_friday() -> None:
    assert escalation_deadline(paid().invoice, CADCROWD.windows) == FRIDAY_LAST_SECOND.replace(
        microsecond=999_999
    )


def test_cc9_a_declined_refund_escalated_by_friday_23_59_59_goes_to_support() -> None:
    """CC-9: within the CC-8 deadline the request becomes `escalated`."""
    result = escalate(contract(), declined(), paid().invoice, CADCROWD.windows, FRIDAY_LAST_SECOND)
    assert isinstance(result, RefundRequestState)
    assert result.status == "escalated"
    assert result.decided_at == PAID_AT + timedelta(days=2)


def test_cc9_an_escalation_at_saturday_midnight_is_too_late() -> None:
    """CC-9: Saturday 00:00:00 is past the Friday 23:59:59 deadline: `window_expired`."""
    result = escalate(contract(), declined(), paid().invoice, CADCROWD.windows, SATURDAY)
    assert isinstance(result, Rejected)
    assert result.reason == "window_expired"


def test_cc9_a_jurisdiction_that_extends_hourly_disputes_extends_escalation_too() -> None:
    """CC-9 with SC-13: the escalation deadline is the (extended) dispute deadline."""
    windows = CADCROWD.windows.model_copy(update={"hourly_dispute_days_after_period": 12})
    result = escalate(contract(), declined(), paid().invoice, windows, SATURDAY)
    assert isinstance(result, RefundRequestState)


@pytest.mark.parametrize("status", ["pending", "escalated", "completed", "rejected", "disputed"])
def test_cc9_only_a_declined_request_is_escalated(status: str) -> None:
    result = escalate(
        contract(), declined(status=status), paid().invoice, CADCROWD.windows, PAID_AT
    )
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_state"


def test_cc9_a_fixed_contracts_refund_is_not_escalated() -> None:
    result = escalate(
        contract("fixed"), declined(), paid().invoice, CADCROWD.windows, FRIDAY_LAST_SECOND
    )
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_state"


def test_cc9_an_escalation_that_happened_before_the_decline_is_refused() -> None:
    result = escalate(contract(), declined(), paid().invoice, CADCROWD.windows, PAID_AT)
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_state"


def test_cc9_a_request_whose_invoice_is_unknown_or_elsewhere_is_not_escalated() -> None:
    missing = escalate(contract(), declined(), None, CADCROWD.windows, FRIDAY_LAST_SECOND)
    assert isinstance(missing, Rejected)
    assert missing.reason == "invalid_state"
    foreign = dataclasses.replace(paid().invoice, contract_id="c9")
    elsewhere = escalate(contract(), declined(), foreign, CADCROWD.windows, FRIDAY_LAST_SECOND)
    assert isinstance(elsewhere, Rejected)
    assert elsewhere.reason == "invalid_state"


def test_cc1_the_card_payment_of_an_invoice_is_recorded_for_later_refunds() -> None:
    payment = paid().payment
    assert payment == PaymentState(
        payment_id="pay1",
        contract_id="c1",
        payer_id="client",
        currency="USD",
        charge_total_minor=50_000,
        processor_fee_minor=1_480,
        processor_fee_refunded_minor=0,
        deducted_from_client_minor=0,
        passed_through_minor=0,
        paid_at=PAID_AT,
    )
