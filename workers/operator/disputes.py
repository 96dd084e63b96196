"""The dispute team's queue: disputes oldest first, their age, what is at stake, and the SLA.

Age is measured against the operator's `now` (the wall clock by default): this is a view for
people, not a rule, so it does not take its time from an event. A dispute is overdue from
`opened_at + dispute_sla_days` of its contract's policy on, the instant the engine's SC-14
deadline fires `dispute.overdue`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, tuple_

from policy.config import PolicySet
from policy.tables import contracts, disputes, targets
from workers.operator.formats import jsonable

OPEN = "open"


@dataclass(frozen=True, slots=True)
class QueuedDispute:
    dispute_id: str
    contract_id: str
    target_id: str
    reason: str
    status: str
    opened_at: datetime
    age: timedelta  # open: until `now`; resolved: how long it stayed open
    sla_days: int
    due_at: datetime
    overdue: bool
    currency: str | None
    at_stake_minor: int  # what the target could still refund
    outcome: str | None
    resolved_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = jsonable(self)
        del data["age"]
        data["age_seconds"] = int(self.age.total_seconds())
        return data


def dispute_queue(
    conn: Connection,
    policies: PolicySet,
    now: datetime,
    *,
    only_open: bool = False,
    only_overdue: bool = False,
    status: str | None = None,
    policy: str | None = None,
    min_at_stake_minor: int | None = None,
    max_at_stake_minor: int | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int | None = None,
) -> list[QueuedDispute]:
    """Disputes oldest first; `only_overdue` keeps the open ones past their SLA.

    The console pages by index: `after` is the (`opened_at`, `dispute_id`) of the last row of
    the page before, and `limit` caps the rows read (before `only_overdue` drops any).
    """
    at_stake = targets.c.amount_minor - targets.c.refunded_minor
    query = (
        select(
            disputes,
            contracts.c.policy,
            contracts.c.client_jurisdiction,
            targets.c.currency,
            targets.c.amount_minor,
            targets.c.refunded_minor,
        )
        .select_from(
            disputes.outerjoin(
                contracts, contracts.c.contract_id == disputes.c.contract_id
            ).outerjoin(targets, targets.c.target_id == disputes.c.target_id)
        )
        .order_by(disputes.c.opened_at, disputes.c.dispute_id)
    )
    if only_open or only_overdue:
        query = query.where(disputes.c.status == OPEN)
    if status is not None:
        query = query.where(disputes.c.status == status)
    if policy is not None:
        query = query.where(contracts.c.policy == policy)
    if min_at_stake_minor is not None:
        query = query.where(at_stake >= min_at_stake_minor)
    if max_at_stake_minor is not None:
        query = query.where(at_stake <= max_at_stake_minor)
    if after is not None:
        query = query.where(tuple_(disputes.c.opened_at, disputes.c.dispute_id) > after)
    if limit is not None:
        query = query.limit(limit)
    queue = [_queued(row, policies, now) for row in conn.execute(query)]
    return [item for item in queue if item.overdue] if only_overdue else queue


def _queued(row: Any, policies: PolicySet, now: datetime) -> QueuedDispute:
    policy = policies.get(row.policy)
    sla_days = policy.windows_for(row.client_jurisdiction).dispute_sla_days
    due_at = row.opened_at + timedelta(days=sla_days)
    is_open = row.status == OPEN
    return QueuedDispute(
        dispute_id=row.dispute_id,
        contract_id=row.contract_id,
        target_id=row.target_id,
        reason=row.reason,
        status=row.status,
        opened_at=row.opened_at,
        age=(now if is_open or row.resolved_at is None else row.resolved_at) - row.opened_at,
        sla_days=sla_days,
        due_at=due_at,
        overdue=is_open and now >= due_at,
        currency=row.currency,
        at_stake_minor=(row.amount_minor or 0) - (row.refunded_minor or 0),
        outcome=row.outcome,
        resolved_at=row.resolved_at,
    )
