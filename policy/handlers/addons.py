"""Add-on events (SC-9): purchase, start, and the refund request."""

from __future__ import annotations

from ledger import TransferCode
from messages.inbound import AddonPurchasedEvent, AddonRefundRequestedEvent, AddonStartedEvent
from messages.notifications import AddonRefunded, AddonRefundRejected
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.addons import purchased_addon, refund_addon, start_addon
from policy.rules.legs import EXTERNAL_CARD, PLATFORM_ADDONS, user_account
from policy.state import AddonState, PaymentState
from policy.tables import addons, payments


def _buyer(addon: AddonState) -> str:
    return user_account(addon.user_id)


def _locked_addon(context: HandlerContext, addon_id: str) -> AddonState:
    addon = rows.load(context.conn, addons, AddonState, addon_id, lock=True)
    if addon is None:
        raise UnknownSubject("addon", addon_id)
    return addon


def handle_addon_purchased(context: HandlerContext, event: AddonPurchasedEvent) -> Outcome:
    data = event.data
    known = rows.load(context.conn, addons, AddonState, data.addon_id, lock=True)
    taken = rows.load(context.conn, payments, PaymentState, data.payment_id, lock=True)
    if known is not None or taken is not None:
        return context.reject(
            "invalid_state",
            ["support"],
            subject_id=data.addon_id,
            detail="add-on or payment id already recorded",
        )
    addon = purchased_addon(data, context.at)
    rows.insert_row(context.conn, addons, addon)
    # The payment is recorded like a contract's, so a chargeback on it finds what it paid for.
    rows.insert_row(
        context.conn,
        payments,
        PaymentState(
            payment_id=data.payment_id,
            contract_id=None,
            payer_id=data.user_id,
            currency=data.currency,
            charge_total_minor=data.amount_minor,
            processor_fee_minor=0,
            processor_fee_refunded_minor=0,
            deducted_from_client_minor=0,
            passed_through_minor=0,
            paid_at=context.at,
        ),
    )
    context.post(
        [
            context.transfer(
                EXTERNAL_CARD,
                PLATFORM_ADDONS,
                data.amount_minor,
                data.currency,
                TransferCode.ADDON_PURCHASE,
            )
        ]
    )
    return APPLIED


def handle_addon_started(context: HandlerContext, event: AddonStartedEvent) -> Outcome:
    addon = _locked_addon(context, event.data.addon_id)
    started = start_addon(addon, context.at)
    if isinstance(started, Rejected):
        return context.reject(
            started.reason, ["support"], subject_id=addon.addon_id, detail=started.detail
        )
    rows.save_row(context.conn, addons, started)
    return APPLIED


def handle_addon_refund_requested(
    context: HandlerContext, event: AddonRefundRequestedEvent
) -> Outcome:
    addon = _locked_addon(context, event.data.addon_id)
    window_hours = context.policy(None).windows.addon_refund_hours
    refunded = refund_addon(addon, context.at, window_hours)
    if isinstance(refunded, Rejected):
        return context.reject(
            refunded.reason,
            [_buyer(addon)],
            AddonRefundRejected(
                event_id=context.event_id, addon_id=addon.addon_id, reason=refunded.reason
            ),
            detail=refunded.detail,
        )
    rows.save_row(context.conn, addons, refunded)
    context.post(
        [
            context.transfer(
                PLATFORM_ADDONS,
                _buyer(addon),
                addon.amount_minor,
                addon.currency,
                TransferCode.ADDON_REFUND,
            )
        ]
    )
    context.notify(
        [_buyer(addon)],
        AddonRefunded(
            addon_id=addon.addon_id,
            user_id=addon.user_id,
            currency=addon.currency,
            amount_minor=addon.amount_minor,
        ),
    )
    return APPLIED
