"""Hourly contracts: paid invoices (CC-1, CC-12), refunds only of paid invoices (CC-11) and the
escalation of a declined refund to support (CC-9).

An invoice's states (`TargetState.status`, kind `invoice`):

- `paid`: `hourly.invoice_paid` sent the money straight to the creator's balance, less the
  creator fee; the client fee went to the platform (CC-1). There is no escrow, so the row
  records the invoice as released in full at payment, with its creator fee charged: every
  later refund of it is a clawback from the creator (docs/money-flows.md).
- `refunded`: all of its amount was refunded (terminal).

Until it is paid an invoice does not exist for the engine, so a refund of an invoice id it
has never seen waits for the payment as an unknown subject, then is dead-lettered
`unknown_subject` if the payment never comes (CC-11).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from ledger.codes import TransferCode
from messages.inbound import HourlyInvoicePaid
from policy.config import Fees, Windows
from policy.money import fee_minor
from policy.outcomes import Rejected
from policy.rules.legs import (
    EXTERNAL_CARD,
    EXTERNAL_PROCESSOR,
    PLATFORM_FEES,
    PLATFORM_PROCESSOR_FEES,
    Leg,
    user_account,
)
from policy.rules.targets import ownership_refusal
from policy.state import ContractState, PaymentState, RefundRequestState, TargetState
from scheduler.calendar import day_of, hourly_dispute_deadline


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    invoice: TargetState
    payment: PaymentState
    contract: ContractState
    legs: list[Leg]


def pay_invoice(
    contract: ContractState,
    data: HourlyInvoicePaid,
    fees: Fees,
    at: datetime,
    *,
    existing: TargetState | None,
    payment: PaymentState | None,
) -> InvoicePayment | Rejected:
    """CC-1: the invoice's money goes to the creator's balance less the creator fee, the client
    fee to the platform, and the processor's fee is the platform's cost (CC-12: the fees are
    the preset's, none under `cadcrowd` unless a policy file sets them).

    `existing` is a target already recorded under the invoice's id; `payment` the payment
    already recorded under its id, since one card payment may pay several invoices of one
    contract.
    """
    if contract.kind != "hourly":
        return Rejected("invalid_state", "a fixed contract is not invoiced by the hour")
    if existing is not None:
        return Rejected("invalid_state", f"{data.invoice_id} is already paid")
    if contract.closed_at is not None and data.period_start > day_of(contract.closed_at):
        return Rejected("invalid_state", "the billing period starts after the contract closed")
    if payment is not None and payment.contract_id != contract.contract_id:
        return Rejected("invalid_state", f"payment {data.payment_id} paid another contract")
    amount = data.amount_minor
    client_fee = fee_minor(amount, fees.client_fee_bps)
    creator_fee = fee_minor(amount, fees.creator_fee_bps)
    invoice = TargetState(
        target_id=data.invoice_id,
        kind="invoice",
        contract_id=contract.contract_id,
        payment_id=data.payment_id,
        currency=contract.currency,
        amount_minor=amount,
        client_fee_minor=client_fee,
        creator_fee_minor=creator_fee,
        processor_fee_minor=data.processor_fee_minor,
        paid_at=at,
        period_start=data.period_start,
        work_started_at=None,
        released_at=at,
        released_minor=amount,
        refunded_minor=0,
        client_fee_reversed_minor=0,
        creator_fee_reversed_minor=0,
        creator_fee_charged_minor=creator_fee,
        clawed_back_minor=0,
        status="paid",
        frozen=False,
        final_at=None,
    )
    return InvoicePayment(
        invoice=invoice,
        payment=_charged(
            payment,
            contract,
            payment_id=data.payment_id,
            charged_minor=amount + client_fee,
            processor_fee_minor=data.processor_fee_minor,
            at=at,
        ),
        contract=dataclasses.replace(contract, paid_total_minor=contract.paid_total_minor + amount),
        legs=[
            Leg(
                EXTERNAL_CARD,
                user_account(contract.creator_id),
                amount - creator_fee,
                TransferCode.INVOICE_PAYMENT,
            ),
            Leg(EXTERNAL_CARD, PLATFORM_FEES, client_fee, TransferCode.CLIENT_FEE),
            Leg(EXTERNAL_CARD, PLATFORM_FEES, creator_fee, TransferCode.CREATOR_FEE),
            Leg(
                PLATFORM_PROCESSOR_FEES,
                EXTERNAL_PROCESSOR,
                data.processor_fee_minor,
                TransferCode.PROCESSOR_FEE,
            ),
        ],
    )


def _charged(
    payment: PaymentState | None,
    contract: ContractState,
    *,
    payment_id: str,
    charged_minor: int,
    processor_fee_minor: int,
    at: datetime,
) -> PaymentState:
    """The card payment after this charge: a new one, or one that already paid another
    invoice of the contract, grown by it."""
    if payment is None:
        return PaymentState(
            payment_id=payment_id,
            contract_id=contract.contract_id,
            payer_id=contract.client_id,
            currency=contract.currency,
            charge_total_minor=charged_minor,
            processor_fee_minor=processor_fee_minor,
            processor_fee_refunded_minor=0,
            deducted_from_client_minor=0,
            passed_through_minor=0,
            paid_at=at,
        )
    return dataclasses.replace(
        payment,
        charge_total_minor=payment.charge_total_minor + charged_minor,
        processor_fee_minor=payment.processor_fee_minor + processor_fee_minor,
    )


def escalation_deadline(invoice: TargetState, windows: Windows) -> datetime:
    """CC-9: a declined refund can be escalated until the invoice's CC-8 dispute deadline, the
    Friday 23:59:59 after its billing week (the dispute team's 30-day intake is theirs, not
    support's, so it does not shorten this)."""
    if invoice.period_start is None:
        raise ValueError(f"invoice {invoice.target_id!r} has no billing period")
    return hourly_dispute_deadline(invoice.period_start, windows.hourly_dispute_days_after_period)


def escalate(
    contract: ContractState,
    request: RefundRequestState,
    target: TargetState | None,
    windows: Windows,
    at: datetime,
) -> RefundRequestState | Rejected:
    """CC-9: the client takes a refund the creator declined on an hourly contract to support.

    The request becomes `escalated`: support may then approve it (or decline it for good).
    Judged at the escalation's own time, however late it arrives.
    """
    if contract.kind != "hourly":
        return Rejected("invalid_state", "only a refund of an hourly invoice is escalated")
    if request.status != "declined":
        return Rejected("invalid_state", f"request {request.request_id} is {request.status}")
    if request.decided_at is not None and at < request.decided_at:
        return Rejected("invalid_state", "escalated before the refund was declined")
    if target is None or target.kind != "invoice":
        return Rejected("invalid_state", f"request {request.request_id} is not for an invoice")
    refusal = ownership_refusal(contract, target)
    if refusal is not None:
        return refusal
    deadline = escalation_deadline(target, windows)
    if at > deadline:
        return Rejected("window_expired", f"escalations closed at {deadline.isoformat()}")
    return dataclasses.replace(request, status="escalated")
