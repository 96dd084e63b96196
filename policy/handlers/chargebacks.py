"""Chargeback events (SC-11, SC-12): the card issuer takes a charge back, then decides.

Opening books the disputed amount A and the issuer's fee F into `platform:chargebacks`,
freezes the escrow of the milestones the charge paid (their rows and their ledger accounts,
so no release or refund moves it) and flags a client who charged back accepted work. The
resolution unfreezes that escrow and either settles the chargeback as an SC-6 refund that the
card already paid (client won: the refund engine pays `platform:chargebacks` instead of the
client, which leaves it holding F) or takes A back from the issuer and passes F on to the
client (client lost).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ledger import TransferCode
from messages.inbound import ChargebackOpenedEvent, ChargebackResolvedEvent
from messages.notifications import (
    AccountFlagged,
    ChargebackResolvedNotice,
    EscrowFrozen,
    EscrowUnfrozen,
)
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.points import lock_clawback_accounts
from policy.refunds import refund
from policy.rules.chargebacks import (
    accepted_in_full,
    open_chargeback,
    resolve_chargeback,
    split_settlement,
)
from policy.rules.legs import (
    PLATFORM_ADDONS,
    PLATFORM_CHARGEBACKS,
    Leg,
    escrow_account,
    user_account,
)
from policy.rules.refunds import plan_refund
from policy.state import AddonState, ChargebackState, ContractState, PaymentState, TargetState
from policy.subjects import both_sides, locked_payment
from policy.tables import addons, chargebacks, targets

EXTERNAL_ISSUER = "external:issuer"


def _paid_targets(context: HandlerContext, payment: PaymentState) -> list[TargetState]:
    """What the payment paid for; its contract's row lock keeps them from changing."""
    paid = rows.load_matching(context.conn, targets, TargetState, payment_id=payment.payment_id)
    # Refunds are numbered in this order, so it must not depend on the database's.
    return sorted(paid, key=lambda target: (target.paid_at, target.target_id))


def _sides(payment: PaymentState, contract: ContractState | None) -> list[str]:
    return [user_account(payment.payer_id)] if contract is None else both_sides(contract)


def _set_frozen(
    context: HandlerContext, milestones: Sequence[TargetState], *, frozen: bool
) -> list[TargetState]:
    """Mark the milestones and freeze (or unfreeze) their escrow accounts in the ledger."""
    changed = []
    for milestone in milestones:
        now = dataclasses.replace(milestone, frozen=frozen)
        rows.save_row(context.conn, targets, now)
        escrow = escrow_account(milestone.target_id)
        if frozen:
            context.book.freeze(escrow, milestone.currency)
        else:
            context.book.unfreeze(escrow, milestone.currency)
        changed.append(now)
    return changed


def handle_chargeback_opened(context: HandlerContext, event: ChargebackOpenedEvent) -> Outcome:
    data = event.data
    payment, contract = locked_payment(context, data.payment_id)
    existing = rows.load(context.conn, chargebacks, ChargebackState, data.chargeback_id, lock=True)
    earlier = rows.load_matching(
        context.conn, chargebacks, ChargebackState, payment_id=payment.payment_id
    )
    opened = open_chargeback(existing, data, payment, earlier, context.at)
    if isinstance(opened, Rejected):
        return context.reject(
            opened.reason, ["finance"], subject_id=data.chargeback_id, detail=opened.detail
        )
    rows.insert_row(context.conn, chargebacks, opened)
    context.post_legs(
        [
            Leg(
                PLATFORM_CHARGEBACKS,
                EXTERNAL_ISSUER,
                opened.amount_minor + opened.issuer_fee_minor,
                TransferCode.CHARGEBACK,
            )
        ],
        payment.currency,
    )
    paid = _paid_targets(context, payment)
    milestones = [target for target in paid if target.kind == "milestone"]
    _set_frozen(context, milestones, frozen=True)
    if contract is not None and milestones:
        context.notify(
            _sides(payment, contract),
            EscrowFrozen(
                chargeback_id=opened.chargeback_id,
                payment_id=payment.payment_id,
                contract_id=contract.contract_id,
                milestone_ids=[milestone.target_id for milestone in milestones],
            ),
        )
    if accepted_in_full(paid):
        # SC-12: flagged for a human to review; nothing is suspended here.
        context.notify(
            ["support"],
            AccountFlagged(
                user_id=payment.payer_id,
                reason="chargeback_on_accepted_work",
                chargeback_id=opened.chargeback_id,
            ),
        )
    return APPLIED


def handle_chargeback_resolved(context: HandlerContext, event: ChargebackResolvedEvent) -> Outcome:
    data = event.data
    seen = rows.load(context.conn, chargebacks, ChargebackState, data.chargeback_id)
    if seen is None:
        raise UnknownSubject("chargeback", data.chargeback_id)
    payment, contract = locked_payment(context, seen.payment_id)
    chargeback = rows.load(
        context.conn, chargebacks, ChargebackState, data.chargeback_id, lock=True
    )
    if chargeback is None:
        raise UnknownSubject("chargeback", data.chargeback_id)
    resolved = resolve_chargeback(chargeback, data.outcome, context.at)
    if isinstance(resolved, Rejected):
        return context.reject(
            resolved.reason,
            ["finance"],
            subject_id=chargeback.chargeback_id,
            detail=resolved.detail,
        )
    rows.save_row(context.conn, chargebacks, resolved)
    paid = _paid_targets(context, payment)
    milestones = [target for target in paid if target.kind == "milestone"]
    # Unfrozen first: a won chargeback's settlement moves money out of that escrow.
    unfrozen = {t.target_id: t for t in _set_frozen(context, milestones, frozen=False)}
    paid = [unfrozen.get(target.target_id, target) for target in paid]
    client = user_account(payment.payer_id)
    if resolved.outcome == "client_won":
        owed_by_client = _settle(context, resolved, payment, contract, paid)
        legs = [Leg(client, PLATFORM_CHARGEBACKS, owed_by_client, TransferCode.CHARGEBACK_RECOVERY)]
    else:
        owed_by_client = resolved.issuer_fee_minor
        legs = [
            Leg(
                EXTERNAL_ISSUER,
                PLATFORM_CHARGEBACKS,
                resolved.amount_minor,
                TransferCode.CHARGEBACK_RECOVERY,
            ),
            Leg(client, PLATFORM_CHARGEBACKS, owed_by_client, TransferCode.ISSUER_FEE_PASS_BACK),
        ]
    context.post_legs(legs, payment.currency)
    sides = _sides(payment, contract)
    if contract is not None and milestones:
        context.notify(
            sides,
            EscrowUnfrozen(
                chargeback_id=resolved.chargeback_id,
                payment_id=payment.payment_id,
                contract_id=contract.contract_id,
                milestone_ids=[milestone.target_id for milestone in milestones],
            ),
        )
    context.notify(
        sides,
        ChargebackResolvedNotice(
            chargeback_id=resolved.chargeback_id,
            payment_id=payment.payment_id,
            outcome=data.outcome,
            currency=payment.currency,
            amount_minor=resolved.amount_minor,
            issuer_fee_minor=resolved.issuer_fee_minor,
            passed_to_client_minor=owed_by_client,
        ),
    )
    return APPLIED


def _settle(
    context: HandlerContext,
    chargeback: ChargebackState,
    payment: PaymentState,
    contract: ContractState | None,
    paid: Sequence[TargetState],
) -> int:
    """Settle a won chargeback of A into `platform:chargebacks`; returns what the client owes.

    For a contract's payment: the SC-6 refunds of `split_settlement`, paid by the refund
    engine to `platform:chargebacks`. For an add-on's: the add-on's refund, if it was not
    refunded already. Whatever of A they do not cover the card gave the client beyond what
    the policy refunds (an earlier refund to the balance, or a cent of rounding), so the
    client's balance gives it back.
    """
    if contract is None:
        return chargeback.amount_minor - _settle_addon(context, chargeback, payment)
    shares, short = split_settlement(paid, chargeback.amount_minor, payment.charge_total_minor)
    by_id = {target.target_id: target for target in paid}
    refunds = [
        (by_id[share.target_id], share.refund_minor) for share in shares if share.refund_minor
    ]
    _lock_settlement(context, contract, refunds, short, payment.currency)
    for target, refund_minor in refunds:
        contract = refund(
            context,
            contract,
            target,
            refund_minor,
            cause="chargeback",
            destination=PLATFORM_CHARGEBACKS,
        ).contract
    return short


def _lock_settlement(
    context: HandlerContext,
    contract: ContractState,
    refunds: Sequence[tuple[TargetState, int]],
    short: int,
    currency: str,
) -> None:
    """Lock, before the first posting, what a settlement in several postings would otherwise
    lock one posting at a time (`Book.lock`): the creator the refunds claw back from, the
    client who gives back the shortfall, and, for several refunds, the points their SC-10
    claw-backs may take.

    Two settlements on contracts whose users swap roles deadlocked: one held the creator ben
    (its refund) and waited for the client ana (its shortfall), the other the reverse; so did
    two that each held the points of their first milestone's awardee and waited for those of
    their second's. Money before points, the order every refund takes them in. The escrows
    are left to their postings: only this contract's events, which queue on its row, move them.
    """
    users = [user_account(contract.client_id)] if short else []
    if any(plan_refund(target, minor).clawed_from_creator_minor for target, minor in refunds):
        users.append(user_account(contract.creator_id))
    if len(refunds) + bool(short) > 1 and users:
        context.book.lock(users, currency)
    if len(refunds) > 1:
        lock_clawback_accounts(
            context, [target.target_id for target, _ in refunds if target.kind == "milestone"]
        )


def _settle_addon(
    context: HandlerContext, chargeback: ChargebackState, payment: PaymentState
) -> int:
    found = rows.load_matching(context.conn, addons, AddonState, payment_id=payment.payment_id)
    if len(found) != 1:
        # A payment with no contract is an add-on's own charge (addon.purchased makes both).
        raise UnknownSubject("add-on of payment", payment.payment_id)
    (addon,) = found
    if addon.refunded_at is not None:
        return 0
    # However little was charged back, the add-on counts as refunded: no second refund.
    rows.save_row(context.conn, addons, dataclasses.replace(addon, refunded_at=context.at))
    settled = min(chargeback.amount_minor, addon.amount_minor)
    context.post_legs(
        [Leg(PLATFORM_ADDONS, PLATFORM_CHARGEBACKS, settled, TransferCode.ADDON_REFUND)],
        payment.currency,
    )
    return settled
