"""`hourly.invoice_paid`: an hourly invoice's money reaches the creator's balance (CC-1).

The invoice's state machine is described in `policy.rules.hourly`.
"""

from __future__ import annotations

from messages.inbound import HourlyInvoicePaidEvent
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.hourly import pay_invoice
from policy.rules.legs import user_account
from policy.state import PaymentState, TargetState
from policy.subjects import lock_contract, record_charge
from policy.tables import payments, targets


def handle_invoice_paid(context: HandlerContext, event: HourlyInvoicePaidEvent) -> Outcome:
    data = event.data
    contract = lock_contract(context, data.contract_id)
    existing = rows.load(context.conn, targets, TargetState, data.invoice_id, lock=True)
    payment = rows.load(context.conn, payments, PaymentState, data.payment_id, lock=True)
    policy = context.policy(contract.policy)
    paid = pay_invoice(contract, data, policy.fees, context.at, existing=existing, payment=payment)
    if isinstance(paid, Rejected):
        return context.reject(
            paid.reason,
            [user_account(contract.client_id), "support"],
            subject_id=data.invoice_id,
            detail=paid.detail,
        )
    record_charge(
        context,
        paid.legs,
        target=paid.invoice,
        payment=paid.payment,
        payment_existed=payment is not None,
        contract=paid.contract,
    )
    return APPLIED
