"""`withdrawal.requested`: hold the amount as a pending payout and schedule it (CC-5).

The rule is `policy.rules.withdrawals`.
"""

from __future__ import annotations

from messages.inbound import WithdrawalRequestedEvent
from messages.notifications import WithdrawalScheduled
from policy import rows
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.rules.legs import user_account
from policy.rules.withdrawals import hold_leg, request_withdrawal
from policy.state import WithdrawalState
from policy.tables import withdrawals


def handle_withdrawal_requested(
    context: HandlerContext, event: WithdrawalRequestedEvent
) -> Outcome:
    data = event.data
    user = user_account(data.user_id)
    # A withdrawal belongs to no contract: the policy in force by default sets its payout
    # days and holidays.
    policy = context.policy(None)
    existing = rows.load(context.conn, withdrawals, WithdrawalState, data.withdrawal_id, lock=True)
    leg = hold_leg(data)
    hold = context.transfer(leg.debit, leg.credit, leg.amount_minor, data.currency, leg.code)
    # The hold locks the user's balance row until commit, so the balance read after it is
    # the one every concurrent withdrawal of the user queues behind; undone if refused.
    savepoint = context.conn.begin_nested()
    try:
        context.book.hold(hold)
        available = context.book.balance(user, data.currency).available_minor + data.amount_minor
    except BaseException:
        savepoint.rollback()
        raise
    withdrawal = request_withdrawal(
        data, context.at, policy, existing=existing, available_minor=available
    )
    if isinstance(withdrawal, Rejected):
        savepoint.rollback()
        return context.reject(
            withdrawal.reason, [user], subject_id=data.withdrawal_id, detail=withdrawal.detail
        )
    savepoint.commit()
    rows.insert_row(context.conn, withdrawals, withdrawal)
    context.notify(
        [user],
        WithdrawalScheduled(
            withdrawal_id=withdrawal.withdrawal_id,
            user_id=withdrawal.user_id,
            currency=withdrawal.currency,
            amount_minor=withdrawal.amount_minor,
            earliest_on=withdrawal.earliest_on,
            latest_on=withdrawal.latest_on,
        ),
    )
    return APPLIED
