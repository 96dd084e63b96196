"""Apply one inbound event: inbox guard, handler, and the record of its result.

The caller owns the transaction (a worker's unit of work, or the replay), so the inbox row,
the state changes, the transfers, the deadlines and the outbox rows commit together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, bindparam, select, update

from ledger import Book
from messages.inbound import Envelope
from messages.notifications import ReasonCode
from policy.config import PolicySet
from policy.context import DeadlineScope, HandlerContext
from policy.errors import IdempotencyConflict, UnknownSubject
from policy.outcomes import Rejected
from policy.registry import HANDLERS
from policy.tables import inbox
from store.prepared import InsertIfMissing, Prepared
from store.savepoints import savepoint

Status = Literal["applied", "rejected", "duplicate"]


@dataclass(frozen=True, slots=True)
class ApplyResult:
    event_id: str
    type: str
    status: Status
    reason: ReasonCode | None = None


def canonical_body(body: dict[str, object]) -> str:
    """The envelope's JSON text, the same however its keys were ordered: what the inbox stores
    and its digest is computed from."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def body_digest(canonical: str) -> str:
    """The digest of a canonical body (`canonical_body`) that tells a second delivery of an
    event from another event under the same id."""
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# Prepared once and run on the driver's cursor: SQLAlchemy's per-statement work costs more than
# running these statements on SQLite, and every event runs them.
_SEEN = Prepared(select(inbox.c.body_sha256).where(inbox.c.event_id == bindparam("event_id")))
# The inbox row goes in unless it is there: a second copy of the event, even one committed by
# another worker while this insert waited on its key, inserts nothing and is then looked at.
_RECORD = InsertIfMissing(inbox)
# Bound names differ from the column names, which SQLAlchemy reserves for SET.
_REJECTED = Prepared(
    update(inbox)
    .where(inbox.c.event_id == bindparam("row_event_id"))
    .values(
        result="rejected",
        reason=bindparam("new_reason"),
        contract_id=bindparam("new_contract_id"),
    )
)
_CONTRACT = Prepared(
    update(inbox)
    .where(inbox.c.event_id == bindparam("row_event_id"))
    .values(contract_id=bindparam("new_contract_id"))
)


def _contract_of(event: Envelope) -> str | None:
    contract_id = getattr(event.data, "contract_id", None)
    return contract_id if isinstance(contract_id, str) else None


def apply_event(
    conn: Connection,
    event: Envelope,
    policies: PolicySet,
    *,
    on_unknown_subject: Literal["raise", "reject"] = "raise",
    deadline_scope: DeadlineScope | None = None,
    canonical: str | None = None,
    book: Book | None = None,
) -> ApplyResult:
    """Apply `event` once; a second delivery of the same body is a `duplicate` and does nothing.

    Raises `IdempotencyConflict` when the event id was applied with another body, and
    `UnknownSubject` (with `on_unknown_subject="raise"`, the workers' mode) when the event
    names something not seen yet; either way nothing is written. `book`: the caller's, when
    it chose how the book meets racing writers (`HandlerContext`).
    """
    # `canonical`: the event's canonical body when the caller already holds it (the ordered
    # intake stores it), which spares dumping the model again.
    body = canonical if canonical is not None else canonical_body(event.model_dump(mode="json"))
    digest = body_digest(body)
    contract_id = _contract_of(event)
    # The inbox row goes in first: a second worker holding the same event blocks on its key
    # until this transaction ends, then finds it and stops.
    inserted = _RECORD.run(
        conn,
        {
            "event_id": event.event_id,
            "type": event.type,
            "body_sha256": digest,
            "body": body,
            "occurred_at": event.occurred_at,
            "contract_id": contract_id,
            "result": "applied",
        },
    )
    if not inserted:
        seen = _SEEN.first(conn, {"event_id": event.event_id})
        if seen is None:
            raise RuntimeError(f"inbox row {event.event_id!r} neither inserted nor found")
        if seen[0] != digest:
            raise IdempotencyConflict(event.event_id)
        return ApplyResult(event.event_id, event.type, "duplicate")
    context = HandlerContext(
        conn,
        policies,
        cause_id=event.event_id,
        event_id=event.event_id,
        event_type=event.type,
        occurred_at=event.occurred_at,
        book=book,
    )
    context.contract_id = contract_id
    if deadline_scope is not None:
        context.deadline_scope = deadline_scope
    handler = HANDLERS[event.type]
    if on_unknown_subject == "raise":
        # Whatever the handler raises leaves this function and the caller rolls back the whole
        # unit of work, so a savepoint would undo nothing more (and costs two statements).
        outcome = handler(context, event)
    else:
        try:
            with savepoint(conn, "recourse_event"):
                outcome = handler(context, event)
        except UnknownSubject:
            outcome = context.reject("unknown_subject", ["support"])
    if isinstance(outcome, Rejected):
        _REJECTED.write(
            conn,
            {
                "row_event_id": event.event_id,
                "new_reason": outcome.reason,
                "new_contract_id": context.contract_id,
            },
        )
        return ApplyResult(event.event_id, event.type, "rejected", outcome.reason)
    if context.contract_id != contract_id:
        _CONTRACT.write(
            conn, {"row_event_id": event.event_id, "new_contract_id": context.contract_id}
        )
    return ApplyResult(event.event_id, event.type, "applied")
