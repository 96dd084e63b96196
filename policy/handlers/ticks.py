"""`deadline.tick`: fire every due deadline once, oldest first, however late the tick is."""

from __future__ import annotations

from messages.inbound import DeadlineTickEvent
from policy.context import HandlerContext
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.registry import DEADLINE_HANDLERS, handles
from scheduler.store import claim_due, mark_fired

CLAIM_BATCH = 500


@handles("deadline.tick")
def handle_tick(context: HandlerContext, event: DeadlineTickEvent) -> Outcome:
    while True:
        due = claim_due(context.conn, event.occurred_at, limit=CLAIM_BATCH)
        for deadline in due:
            fire = DEADLINE_HANDLERS[deadline.kind]
            # Effects are named after the deadline, not the tick: whichever tick fires it,
            # its transfers and notifications carry the same ids.
            deadline_context = context.for_cause(f"deadline:{deadline.deadline_id}")
            deadline_context.contract_id = deadline.contract_id
            deadline_context.at = deadline.due_at
            outcome = fire(deadline_context, deadline.subject_id)
            mark_fired(
                context.conn,
                deadline.deadline_id,
                at=event.occurred_at,
                event_id=event.event_id,
                outcome=outcome.reason if isinstance(outcome, Rejected) else "fired",
            )
        if len(due) < CLAIM_BATCH:
            return APPLIED
