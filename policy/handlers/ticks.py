"""`deadline.tick`: fire every due deadline once, oldest first, however late the tick is."""

from __future__ import annotations

from messages.inbound import DeadlineTickEvent
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.registry import DEADLINE_HANDLERS, handles
from scheduler.store import DueDeadline, claim_due, mark_fired, record_outcome

CLAIM_BATCH = 500


@handles("deadline.tick")
def handle_tick(context: HandlerContext, event: DeadlineTickEvent) -> Outcome:
    # Claim until nothing due is left, rather than until a batch comes back short: a deadline
    # that fires may schedule another one that is already due at this tick.
    while due := claim_due(
        context.conn, event.occurred_at, kinds=DEADLINE_HANDLERS.keys(), limit=CLAIM_BATCH
    ):
        for deadline in due:
            if mark_fired(context.conn, deadline, at=event.occurred_at, event_id=event.event_id):
                _fire(context, deadline)
    return APPLIED


def _fire(context: HandlerContext, deadline: DueDeadline) -> None:
    # Effects are named after the deadline, not the tick, and judged at the deadline's own
    # time: whichever tick fires it, and however late, its transfers and notifications are
    # the same.
    deadline_context = context.for_cause(f"deadline:{deadline.deadline_id}")
    deadline_context.contract_id = deadline.contract_id
    deadline_context.at = deadline.due_at
    outcome = DEADLINE_HANDLERS[deadline.kind](deadline_context, deadline.subject_id)
    if isinstance(outcome, Rejected):
        record_outcome(context.conn, deadline.deadline_id, outcome.reason)
