"""Points events (SC-10): awards, cash-outs, and a cash-out reversed by a fraud claim."""

from __future__ import annotations

from sqlalchemy import func, select

from ledger import TransferCode
from messages.inbound import (
    PointsAwardedEvent,
    PointsCashoutPaidEvent,
    PointsCashoutReversedEvent,
)
from policy import rows
from policy.context import HandlerContext
from policy.errors import UnknownSubject
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.points import claw_back_points
from policy.rules.legs import user_account
from policy.rules.points import (
    POINTS_CURRENCY,
    POINTS_SOURCE,
    new_award,
    pay_cashout,
    points_account,
    reverse_cashout,
)
from policy.state import CashoutState, TargetState
from policy.subjects import contract_of, load_target, lock_contract
from policy.tables import cashouts, point_awards


def _lock_points_of(context: HandlerContext, user_id: str) -> None:
    """Serialize the cash-outs of one user: each checks the balance, then spends it.

    A points account may go negative, so the ledger would not stop two concurrent cash-outs
    that each saw enough; no row stands for a user, so a transaction-scoped advisory lock
    does. SQLite already runs one writing transaction at a time.
    """
    if context.conn.dialect.name == "postgresql":
        key = func.hashtextextended(points_account(user_id), 0)
        context.conn.execute(select(func.pg_advisory_xact_lock(key)))


def _lock_milestone(context: HandlerContext, milestone_id: str) -> TargetState:
    """The milestone, locked after its contract, as every handler of a contract locks them."""
    context.contract_id = contract_of(context, milestone_id)
    lock_contract(context, context.contract_id)
    milestone = load_target(context, milestone_id, "milestone")
    if milestone.kind != "milestone":
        raise UnknownSubject("milestone", milestone_id)
    return milestone


def handle_points_awarded(context: HandlerContext, event: PointsAwardedEvent) -> Outcome:
    data = event.data
    milestone = _lock_milestone(context, data.milestone_id) if data.milestone_id else None
    # The event carries no award id; its own id names the award, once.
    rows.insert_row(context.conn, point_awards, new_award(context.event_id, data, context.at))
    context.post(
        [
            context.transfer(
                POINTS_SOURCE,
                points_account(data.user_id),
                data.points,
                POINTS_CURRENCY,
                TransferCode.POINTS_AWARD,
            )
        ]
    )
    if milestone is not None and milestone.refunded_minor > 0:
        # Awarded for a milestone already refunded in part: those points are owed back now,
        # as they would have been had the award come first.
        claw_back_points(
            context, milestone.target_id, milestone.refunded_minor, milestone.amount_minor
        )
    return APPLIED


def handle_points_cashout_paid(context: HandlerContext, event: PointsCashoutPaidEvent) -> Outcome:
    data = event.data
    _lock_points_of(context, data.user_id)
    existing = rows.load(context.conn, cashouts, CashoutState, data.cashout_id, lock=True)
    account = points_account(data.user_id)
    balance = context.book.balance(account, POINTS_CURRENCY).available_minor
    paid = pay_cashout(existing, data, balance, context.at)
    if isinstance(paid, Rejected):
        return context.reject(
            paid.reason,
            [user_account(data.user_id)],
            subject_id=data.cashout_id,
            detail=paid.detail,
        )
    rows.insert_row(context.conn, cashouts, paid)
    context.post(
        [
            context.transfer(
                account, POINTS_SOURCE, paid.points, POINTS_CURRENCY, TransferCode.POINTS_CASHOUT
            )
        ]
    )
    return APPLIED


def handle_points_cashout_reversed(
    context: HandlerContext, event: PointsCashoutReversedEvent
) -> Outcome:
    data = event.data
    cashout = rows.load(context.conn, cashouts, CashoutState, data.cashout_id, lock=True)
    if cashout is None:
        raise UnknownSubject("cashout", data.cashout_id)
    reversed_ = reverse_cashout(cashout, data.fraud_claim_id, context.at)
    if isinstance(reversed_, Rejected):
        return context.reject(
            reversed_.reason, ["support"], subject_id=cashout.cashout_id, detail=reversed_.detail
        )
    rows.save_row(context.conn, cashouts, reversed_)
    context.post(
        [
            context.transfer(
                POINTS_SOURCE,
                points_account(cashout.user_id),
                cashout.points,
                POINTS_CURRENCY,
                TransferCode.POINTS_CASHOUT_REVERSAL,
            )
        ]
    )
    return APPLIED
