"""What the console's pages show, read from one snapshot of the store.

The queue, the contract's story and the statements are the operator CLI's own queries
(`workers.operator`); this module adds the dispute page's parts the CLI has no use for
(evidence, decisions with their operators) and the support tier's queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, column, inspect, select, table

from console.errors import NotFoundError
from policy.config import PolicySet
from policy.rows import load
from policy.state import ContractState, DisputeState, RefundRequestState, TargetState
from policy.tables import contracts, disputes, inbox, refund_requests, targets
from workers.operator.disputes import QueuedDispute, dispute_queue
from workers.operator.formats import iso
from workers.operator.timeline import DECISION_TYPES

PAGE_SIZE = 50
QUEUE_STATUSES = ("open", "overdue", "resolved", "all")

EVIDENCE_TABLE = "dispute_evidence"
"""Written by the engine from `dispute.evidence_added` (OP-3); an older store has none."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    status: str = "open"
    policy: str | None = None
    min_at_stake_minor: int | None = None
    max_at_stake_minor: int | None = None

    def __post_init__(self) -> None:
        if self.status not in QUEUE_STATUSES:
            raise ValueError(f"status is one of {', '.join(QUEUE_STATUSES)}")


@dataclass(frozen=True, slots=True)
class QueuePage:
    disputes: list[QueuedDispute]
    next_cursor: str | None


def encode_cursor(item: QueuedDispute) -> str:
    return f"{iso(item.opened_at)}|{item.dispute_id}"


def decode_cursor(text: str) -> tuple[datetime, str]:
    opened, _, dispute_id = text.partition("|")
    if not dispute_id:
        raise ValueError("a cursor is OPENED_AT|DISPUTE_ID, as the page before gave it")
    return datetime.fromisoformat(opened), dispute_id


def queue_page(
    conn: Connection,
    policies: PolicySet,
    now: datetime,
    filters: QueueFilter,
    *,
    after: str | None = None,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the dispute queue, oldest first, paged by (opened_at, dispute_id)."""
    cursor = decode_cursor(after) if after else None
    overdue_only = filters.status == "overdue"
    found: list[QueuedDispute] = []
    while True:
        batch = dispute_queue(
            conn,
            policies,
            now,
            status={"all": None, "overdue": "open"}.get(filters.status, filters.status),
            policy=filters.policy,
            min_at_stake_minor=filters.min_at_stake_minor,
            max_at_stake_minor=filters.max_at_stake_minor,
            after=cursor,
            limit=limit + 1,
        )
        # Overdue-ness depends on each contract's policy, so that filter runs here: read
        # batches until the page is full or the store has no more.
        found.extend(item for item in batch if item.overdue or not overdue_only)
        if len(found) > limit or len(batch) <= limit:
            break
        cursor = (batch[-1].opened_at, batch[-1].dispute_id)
    page = found[:limit]
    more = len(found) > limit
    return QueuePage(page, encode_cursor(page[-1]) if more and page else None)


def queue_row(
    conn: Connection, policies: PolicySet, now: datetime, case: DisputeCase
) -> QueuedDispute:
    """The queue's own row of one dispute (SLA, due, overdue), found by its index key."""
    same_time = dispute_queue(conn, policies, now, after=(case.dispute.opened_at, ""), limit=100)
    return next(item for item in same_time if item.dispute_id == case.dispute.dispute_id)


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    media_type: str
    size_bytes: int
    sha256: str
    url: str


@dataclass(frozen=True, slots=True)
class Evidence:
    evidence_id: str
    party: str
    text: str
    attachments: list[Attachment]
    occurred_at: datetime
    event_id: str


def evidence_of(conn: Connection, dispute_id: str) -> list[Evidence] | None:
    """The evidence both parties added (OP-3), oldest first; None when the store keeps none."""
    if not inspect(conn).has_table(EVIDENCE_TABLE):
        return None
    names = ("evidence_id", "party", "text", "attachments", "occurred_at", "event_id")
    evidence = table(EVIDENCE_TABLE, column("dispute_id"), *(column(name) for name in names))
    rows = conn.execute(
        select(*(evidence.c[name] for name in names))
        .where(evidence.c.dispute_id == dispute_id)
        .order_by(evidence.c.occurred_at, evidence.c.evidence_id)
    )
    return [
        Evidence(
            evidence_id=row.evidence_id,
            party=row.party,
            text=row.text,
            attachments=[Attachment(**item) for item in _json_list(row.attachments)],
            occurred_at=_aware(row.occurred_at),
            event_id=row.event_id,
        )
        for row in rows
    ]


def _json_list(value: Any) -> list[dict[str, Any]]:
    items = json.loads(value) if isinstance(value, str) else (value or [])
    return [dict(item) for item in items]


def _aware(value: Any) -> datetime:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(at, datetime)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A decision the engine received, with the operator who took it (OP-1)."""

    event_id: str
    type: str
    occurred_at: datetime
    result: str
    reason: str | None
    decided_by: str | None
    data: dict[str, Any] = field(default_factory=dict)


def decisions_of(conn: Connection, contract_id: str) -> list[DecisionRecord]:
    """The decision events stored for `contract_id`, oldest first, read from their bodies."""
    rows = conn.execute(
        select(inbox.c.event_id, inbox.c.type, inbox.c.occurred_at, inbox.c.result)
        .add_columns(inbox.c.reason, inbox.c.body)
        .where(inbox.c.contract_id == contract_id, inbox.c.type.in_(DECISION_TYPES))
        .order_by(inbox.c.occurred_at, inbox.c.event_id)
    )
    records = []
    for row in rows:
        body = json.loads(row.body) if isinstance(row.body, str) else dict(row.body)
        data = dict(body.get("data", {}))
        records.append(
            DecisionRecord(
                event_id=row.event_id,
                type=row.type,
                occurred_at=row.occurred_at,
                result=row.result,
                reason=row.reason,
                decided_by=data.get("decided_by"),
                data=data,
            )
        )
    return records


@dataclass(frozen=True, slots=True)
class DisputeCase:
    dispute: DisputeState
    contract: ContractState | None
    target: TargetState | None

    @property
    def currency(self) -> str:
        if self.target is not None:
            return self.target.currency
        return self.contract.currency if self.contract is not None else ""


def load_case(conn: Connection, dispute_id: str) -> DisputeCase:
    dispute = load(conn, disputes, DisputeState, dispute_id)
    if dispute is None:
        raise NotFoundError(f"no dispute {dispute_id!r}")
    return DisputeCase(
        dispute=dispute,
        contract=load(conn, contracts, ContractState, dispute.contract_id),
        target=load(conn, targets, TargetState, dispute.target_id),
    )


@dataclass(frozen=True, slots=True)
class SupportItem:
    """A refund request only support can decide now: escalated (CC-9), or CC-3's support tier."""

    request_id: str
    contract_id: str
    target_id: str
    amount_minor: int
    currency: str
    reason: str
    requested_at: datetime
    status: str
    tier: str  # escalation | support_window
    paid_at: datetime
    support_until: datetime


def support_queue(conn: Connection, policies: PolicySet, now: datetime) -> list[SupportItem]:
    rows = conn.execute(
        select(
            refund_requests,
            targets.c.currency,
            targets.c.paid_at,
            contracts.c.policy,
            contracts.c.client_jurisdiction,
        )
        .select_from(
            refund_requests.join(targets, targets.c.target_id == refund_requests.c.target_id).join(
                contracts, contracts.c.contract_id == refund_requests.c.contract_id
            )
        )
        .where(refund_requests.c.status.in_(("pending", "escalated")))
        .order_by(refund_requests.c.requested_at, refund_requests.c.request_id)
    )
    items = []
    for row in rows:
        windows = policies.get(row.policy).windows_for(row.client_jurisdiction)
        expert_until = row.paid_at + timedelta(days=windows.expert_approval_days)
        if row.status == "pending" and now <= expert_until:
            continue  # still the creator's to decide (CC-2, CC-3)
        items.append(
            SupportItem(
                request_id=row.request_id,
                contract_id=row.contract_id,
                target_id=row.target_id,
                amount_minor=row.amount_minor,
                currency=row.currency,
                reason=row.reason,
                requested_at=row.requested_at,
                status=row.status,
                tier="escalation" if row.status == "escalated" else "support_window",
                paid_at=row.paid_at,
                support_until=row.paid_at + timedelta(days=windows.support_approval_days),
            )
        )
    return items


def load_request(conn: Connection, request_id: str) -> RefundRequestState:
    request = load(conn, refund_requests, RefundRequestState, request_id)
    if request is None:
        raise NotFoundError(f"no refund request {request_id!r}")
    return request
