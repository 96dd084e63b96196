"""`deadline.tick`: fire every due deadline once, oldest first, however late the tick is.

A deadline whose handler raises (a bug, a row that breaks an invariant, a database constraint
that refuses its write) must not hold back every deadline due after it: the tick fires
everything first in one go; if anything raised, it undoes that and fires again, each deadline
in its own savepoint, skipping the ones that raise. They stay waiting, logged at every tick,
and fire once fixed. A database that is away or a collision with another transaction is not
such a failure: it leaves the tick, which is tried again whole.

A tick holds the deadlines it claims (row locks) until it commits, and a deadline's handler
locks its contract, while an event locks its contract first and may then cancel or move one of
its deadlines: the same two locks in opposite orders, a deadlock PostgreSQL breaks only after
`deadlock_timeout` (a second of everything queued behind them). So a tick locks the contracts
of what it claimed at once, skipping those another transaction holds, and leaves their
deadlines for the next tick: it never waits for a contract while it holds deadlines. A
deadline fires at its own time whichever tick fires it, so one tick later changes nothing but
when its notifications go out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from messages.inbound import DeadlineTickEvent
from policy.context import HandlerContext
from policy.handlers.contracts import fire_review_window
from policy.handlers.disputes import fire_overdue
from policy.handlers.milestones import fire_finalize
from policy.outcomes import APPLIED, Outcome, Rejected
from policy.subjects import FINALIZE, OVERDUE, REVIEW_WINDOW
from policy.tables import contracts
from scheduler.store import DueDeadline, claim_due, mark_fired, record_outcome
from store.prepared import Prepared
from store.savepoints import savepoint

CLAIM_BATCH = 500

log = structlog.get_logger(__name__)

DeadlineHandler = Callable[[HandlerContext, str], Outcome]
"""Fires one deadline: gets the context and the deadline's subject id."""

DEADLINE_HANDLERS: dict[str, DeadlineHandler] = {
    REVIEW_WINDOW: fire_review_window,
    FINALIZE: fire_finalize,
    OVERDUE: fire_overdue,
}
"""What a due deadline of each kind does; a tick claims only the kinds named here."""

F = TypeVar("F", bound=DeadlineHandler)


def fires(deadline_kind: str) -> Callable[[F], F]:
    """Add the decorated function to `DEADLINE_HANDLERS` as what a due deadline of
    `deadline_kind` does: for kinds of the tests and the benchmark, beside the engine's own."""

    def register(function: F) -> F:
        if deadline_kind in DEADLINE_HANDLERS:
            raise RuntimeError(f"two handlers for deadline kind {deadline_kind}")
        DEADLINE_HANDLERS[deadline_kind] = function
        return function

    return register


def handle_tick(context: HandlerContext, event: DeadlineTickEvent) -> Outcome:
    return fire_deadlines(context, event)


def fire_deadlines(context: HandlerContext, event: DeadlineTickEvent) -> Outcome:
    """Fire the deadlines due at the tick's time that `context.deadline_scope` includes."""
    try:
        # One savepoint for the whole tick: the common case pays two statements, not two for
        # every deadline.
        with savepoint(context.conn, "recourse_tick"):
            _fire_due(context, event, isolate=False)
    except Exception as exc:  # any handler's failure: the second pass logs each one
        if _passing(exc):
            raise
        _fire_due(context, event, isolate=True)
    return APPLIED


def _passing(exc: Exception) -> bool:
    """Whether `exc` is the database's state rather than a deadline's: away (lost, refusing
    connections) or colliding with another transaction (deadlock, serialization, lock
    timeout, all OperationalError), which a retry of the whole tick gets past. A refused
    constraint, bad data or SQL is the deadline's own, the same at every retry."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def _fire_due(context: HandlerContext, event: DeadlineTickEvent, *, isolate: bool) -> None:
    failed: set[str] = set()
    # Deadlines whose contract another transaction held when they were claimed: the next
    # tick's (module docstring).
    left: set[str] = set()
    # Claim until nothing due is left, rather than until a batch comes back short: a deadline
    # that fires may schedule another one that is already due at this tick. Deadlines that
    # raised or were left stay due and are passed over by the claim itself, so the loop ends
    # and however many there are, the ones due after them are reached.
    while due := claim_due(
        context.conn,
        event.occurred_at,
        kinds=DEADLINE_HANDLERS.keys(),
        excluded=failed | left,
        limit=CLAIM_BATCH,
    ):
        out_of_scope = {
            deadline.deadline_id
            for deadline in due
            if not context.deadline_scope.includes(deadline.contract_id)
        }
        left |= out_of_scope
        due = [deadline for deadline in due if deadline.deadline_id not in out_of_scope]
        busy = _lock_contracts(context.conn, due)
        if busy:
            left.update(deadline.deadline_id for deadline in due if deadline.contract_id in busy)
            log.info(
                "deadline.contract_busy",
                contracts=len(busy),
                tick_event_id=event.event_id,
            )
        for deadline in due:
            if deadline.contract_id in busy:
                continue
            if not isolate:
                _mark_and_fire(context, event, deadline)
                continue
            try:
                with savepoint(context.conn, "recourse_deadline"):
                    _mark_and_fire(context, event, deadline)
            except Exception as exc:  # logged; the deadline stays due
                if _passing(exc):
                    raise
                log.exception(
                    "deadline.failed",
                    deadline_id=deadline.deadline_id,
                    kind=deadline.kind,
                    tick_event_id=event.event_id,
                )
                failed.add(deadline.deadline_id)


# NOWAIT would fail the tick; SKIP LOCKED leaves out, silently, what another transaction holds.
_LOCK_FREE_CONTRACTS = Prepared(
    select(contracts.c.contract_id)
    .where(contracts.c.contract_id.in_(bindparam("ids", expanding=True)))
    .order_by(contracts.c.contract_id)
    .with_for_update(skip_locked=True)
)
_EXISTING_CONTRACTS = Prepared(
    select(contracts.c.contract_id).where(
        contracts.c.contract_id.in_(bindparam("ids", expanding=True))
    )
)


def _lock_contracts(conn: Connection, due: list[DueDeadline]) -> set[str]:
    """Lock the contracts of `due` for the rest of the transaction, without waiting; the ids of
    those another transaction holds (not locked here). A contract that does not exist is not
    held: its deadline fires, and its handler says what that means."""
    ids = sorted({deadline.contract_id for deadline in due if deadline.contract_id is not None})
    if not ids:
        return set()
    locked = {row[0] for row in _LOCK_FREE_CONTRACTS.rows(conn, {"ids": _padded(ids)})}
    missing = [contract_id for contract_id in ids if contract_id not in locked]
    if not missing:
        return set()
    return {row[0] for row in _EXISTING_CONTRACTS.rows(conn, {"ids": _padded(missing)})}


def _padded(ids: list[str]) -> list[str]:
    # A prepared `IN` is compiled and kept once per number of values: repeating the last id up
    # to a power of two keeps that to a dozen texts for up to `CLAIM_BATCH` contracts.
    size = 1 << (len(ids) - 1).bit_length()
    return ids + [ids[-1]] * (size - len(ids))


def _mark_and_fire(
    context: HandlerContext, event: DeadlineTickEvent, deadline: DueDeadline
) -> None:
    if mark_fired(context.conn, deadline, at=event.occurred_at, event_id=event.event_id):
        _fire(context, deadline)


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
