"""A contract's whole story: its events, what each caused, its state, deadlines and money.

Events are the inbox rows of the contract (a duplicate delivery stores no row, so each event
appears once, with the count of notifications and transfers it caused). A deadline that a tick
fired is part of the story too: its effects are named `deadline:<deadline_id>` (see
`policy.ticks`), because the tick that fires it belongs to no contract.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, or_, select

from ledger.tables import transfers
from policy.rows import load, load_matching
from policy.state import ContractState, DisputeState, RefundRequestState, TargetState
from policy.tables import contracts, disputes, inbox, outbox, refund_requests, targets
from scheduler.tables import deadlines
from workers.operator.entries import DEADLINE_CAUSE, TransferLine, transfer_lines
from workers.operator.errors import NotFound
from workers.operator.formats import jsonable

CANCELLED = "cancelled"
DECISION_TYPES = ("dispute.resolved", "refund.approved", "refund.declined")
"""The events that carry an operator's decision, and so `decided_by` (OP-1, docs/policy.md)."""
"""The outcome `scheduler.store.cancel` gives a deadline whose cause went away."""


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One thing that happened to the contract: an inbound event or a deadline firing."""

    at: datetime
    source: str  # event | deadline
    id: str  # the event id, or the deadline id
    type: str  # the event type, or the deadline kind
    result: str  # applied | rejected (events); fired | cancelled | a reason code (deadlines)
    reason: str | None
    notifications: int
    transfers: int
    fired_by: str | None  # the tick that fired a deadline, or the event that cancelled it
    decided_by: str | None = None  # the operator a decision event names (OP-1)


@dataclass(frozen=True, slots=True)
class OpenDeadline:
    deadline_id: str
    kind: str
    subject_id: str
    due_at: datetime
    created_by_event: str


@dataclass(frozen=True, slots=True)
class ContractTimeline:
    contract_id: str
    contract: ContractState | None  # None when every event naming it was refused
    story: list[StoryLine]
    targets: list[TargetState]
    refund_requests: list[RefundRequestState]
    disputes: list[DisputeState]
    open_deadlines: list[OpenDeadline]
    transfers: list[TransferLine]

    def as_json(self) -> dict[str, Any]:
        contract = jsonable(self.contract)
        if self.contract is not None:
            contract["net_value_minor"] = self.contract.net_value_minor
        return {
            "contract_id": self.contract_id,
            "contract": contract,
            "story": jsonable(self.story),
            "targets": [
                {
                    **jsonable(target),
                    "held_in_escrow_minor": target.held_in_escrow_minor,
                    "refundable_minor": target.refundable_minor,
                }
                for target in self.targets
            ],
            "refund_requests": jsonable(self.refund_requests),
            "disputes": jsonable(self.disputes),
            "open_deadlines": jsonable(self.open_deadlines),
            "transfers": jsonable(self.transfers),
        }


def contract_timeline(conn: Connection, contract_id: str, *, where: str) -> ContractTimeline:
    """Everything the store knows about `contract_id`; `NotFound` when it knows nothing."""
    contract = load(conn, contracts, ContractState, contract_id)
    events = _events(conn, contract_id)
    if contract is None and not events:
        raise NotFound("contract", contract_id, where)
    fired, still_open = _deadlines(conn, contract_id)
    event_ids = [row.event_id for row in events]
    deadline_causes = [f"{DEADLINE_CAUSE}{row.deadline_id}" for row in fired]
    notes = _notification_counts(conn, event_ids, deadline_causes)
    lines = transfer_lines(conn, _caused_by(event_ids, deadline_causes))
    moved = Counter(line.cause for line in lines)
    deciders = _deciders(conn, [row.event_id for row in events if row.type in DECISION_TYPES])
    story = [_event_line(row, notes, moved, deciders) for row in events]
    story += [_deadline_line(row, notes, moved) for row in fired]
    story.sort(key=lambda line: (line.at, line.source != "event", line.id))
    return ContractTimeline(
        contract_id=contract_id,
        contract=contract,
        story=story,
        targets=sorted(
            load_matching(conn, targets, TargetState, contract_id=contract_id),
            key=lambda target: (target.paid_at, target.target_id),
        ),
        refund_requests=sorted(
            load_matching(conn, refund_requests, RefundRequestState, contract_id=contract_id),
            key=lambda request: (request.requested_at, request.request_id),
        ),
        disputes=sorted(
            load_matching(conn, disputes, DisputeState, contract_id=contract_id),
            key=lambda dispute: (dispute.opened_at, dispute.dispute_id),
        ),
        open_deadlines=[
            OpenDeadline(
                deadline_id=row.deadline_id,
                kind=row.kind,
                subject_id=row.subject_id,
                due_at=row.due_at,
                created_by_event=row.created_by_event,
            )
            for row in still_open
        ],
        transfers=lines,
    )


def _event_line(
    row: Any, notes: Counter[str], moved: Counter[str], deciders: dict[str, str]
) -> StoryLine:
    return StoryLine(
        at=row.occurred_at,
        source="event",
        id=row.event_id,
        type=row.type,
        result=row.result,
        reason=row.reason,
        notifications=notes[row.event_id],
        transfers=moved[row.event_id],
        fired_by=None,
        decided_by=deciders.get(row.event_id),
    )


def _deadline_line(row: Any, notes: Counter[str], moved: Counter[str]) -> StoryLine:
    cause = f"{DEADLINE_CAUSE}{row.deadline_id}"
    return StoryLine(
        # A deadline's effects happen at its due time, however late the tick came; a
        # cancelled one ended when the event that cancelled it happened.
        at=row.fired_at if row.outcome == CANCELLED else row.due_at,
        source="deadline",
        id=row.deadline_id,
        type=row.kind,
        result=row.outcome or "fired",
        reason=None,
        notifications=notes[cause],
        transfers=moved[cause],
        fired_by=row.fired_by_event,
    )


def _events(conn: Connection, contract_id: str) -> list[Any]:
    # An event whose handler found the contract only through another id (a dispute, a
    # payment) is tied to it by its notifications, should its inbox row lack the contract.
    noted = select(outbox.c.event_id).where(
        outbox.c.contract_id == contract_id,
        ~outbox.c.notification_id.startswith(DEADLINE_CAUSE, autoescape=True),
    )
    return list(
        conn.execute(
            select(
                inbox.c.event_id,
                inbox.c.type,
                inbox.c.occurred_at,
                inbox.c.result,
                inbox.c.reason,
            )
            .where(or_(inbox.c.contract_id == contract_id, inbox.c.event_id.in_(noted)))
            .order_by(inbox.c.occurred_at, inbox.c.event_id)
        )
    )


def _deciders(conn: Connection, event_ids: list[str]) -> dict[str, str]:
    """The operator each decision event names in `data.decided_by`, read from its stored
    body; a decision taken before OP-1 names none."""
    if not event_ids:
        return {}
    rows = conn.execute(
        select(inbox.c.event_id, inbox.c.body).where(inbox.c.event_id.in_(event_ids))
    )
    named: dict[str, str] = {}
    for row in rows:
        data = row.body.get("data") if isinstance(row.body, dict) else None
        decided_by = data.get("decided_by") if isinstance(data, dict) else None
        if isinstance(decided_by, str):
            named[row.event_id] = decided_by
    return named


def _deadlines(conn: Connection, contract_id: str) -> tuple[list[Any], list[Any]]:
    rows = conn.execute(
        select(deadlines)
        .where(deadlines.c.contract_id == contract_id)
        .order_by(deadlines.c.due_at, deadlines.c.deadline_id)
    ).all()
    fired = [row for row in rows if row.fired_at is not None]
    still_open = [row for row in rows if row.fired_at is None]
    return fired, still_open


def _notification_counts(
    conn: Connection, event_ids: list[str], deadline_causes: list[str]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    if event_ids:
        counts.update(
            conn.execute(
                select(outbox.c.event_id).where(
                    outbox.c.event_id.in_(event_ids),
                    ~outbox.c.notification_id.startswith(DEADLINE_CAUSE, autoescape=True),
                )
            ).scalars()
        )
    for cause in deadline_causes:
        counts[cause] = len(
            conn.execute(
                select(outbox.c.seq).where(
                    outbox.c.notification_id.startswith(f"{cause}:", autoescape=True)
                )
            ).all()
        )
    return counts


def _caused_by(event_ids: list[str], deadline_causes: list[str]) -> Any:
    """The transfers of the contract's own events and of its deadlines' firings."""
    criteria = [
        transfers.c.transfer_id.startswith(f"{cause}#", autoescape=True)
        for cause in deadline_causes
    ]
    if event_ids:
        criteria.append(
            transfers.c.event_id.in_(event_ids)
            & ~transfers.c.transfer_id.startswith(DEADLINE_CAUSE, autoescape=True)
        )
    return or_(*criteria) if criteria else None
