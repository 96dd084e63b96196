"""`processor.fee_refunded` (SC-7, second half): the processor gives its fee back.

The platform's cost drops by that much, and every SC-7 deduction made from the client's
small refunds on that payment, which the platform kept to cover the fee, is passed back to
the client. The deductions themselves are booked by the refund engine, which adds them to
`payments.deducted_from_client_minor`.
"""

from __future__ import annotations

import dataclasses

from ledger import TransferCode
from messages.inbound import ProcessorFeeRefundedEvent
from messages.notifications import ProcessorFeePassedThrough
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome
from policy.rules.legs import EXTERNAL_PROCESSOR, PLATFORM_PROCESSOR_FEES, user_account
from policy.subjects import locked_payment
from policy.tables import payments


def handle_processor_fee_refunded(
    context: HandlerContext, event: ProcessorFeeRefundedEvent
) -> Outcome:
    data = event.data
    payment, _ = locked_payment(context, data.payment_id)
    fee_left = payment.processor_fee_minor - payment.processor_fee_refunded_minor
    if data.amount_minor > fee_left:
        return context.reject(
            "exceeds_refundable",
            ["finance"],
            subject_id=payment.payment_id,
            detail=f"{data.amount_minor} refunded, {fee_left} of the processor fee left",
        )
    owed = payment.deducted_from_client_minor - payment.passed_through_minor
    rows.save_row(
        context.conn,
        payments,
        dataclasses.replace(
            payment,
            processor_fee_refunded_minor=payment.processor_fee_refunded_minor + data.amount_minor,
            passed_through_minor=payment.deducted_from_client_minor,
        ),
    )
    client = user_account(payment.payer_id)
    context.post(
        [
            context.transfer(
                EXTERNAL_PROCESSOR,
                PLATFORM_PROCESSOR_FEES,
                data.amount_minor,
                payment.currency,
                TransferCode.PROCESSOR_FEE_REFUND,
            ),
            context.transfer(
                PLATFORM_PROCESSOR_FEES, client, owed, payment.currency, TransferCode.PASS_THROUGH
            ),
        ]
    )
    if owed > 0:
        context.notify(
            [client],
            ProcessorFeePassedThrough(
                payment_id=payment.payment_id,
                contract_id=payment.contract_id,
                currency=payment.currency,
                processor_fee_refunded_minor=data.amount_minor,
                passed_to_client_minor=owed,
            ),
        )
    return APPLIED
