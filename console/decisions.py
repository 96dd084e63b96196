"""Decisions taken in the console: built as events, checked, and published, or proposed.

A decision becomes the event any producer would send (`dispute.resolved`, or
`refund.approved`/`refund.declined` by `support`) naming its operator in `decided_by` (OP-1),
and goes to the injected publisher: the broker in production, the engine itself in embedded
mode. One that moves more than the four-eyes threshold to or from a party is stored as a
proposal instead, and published only when a second, different operator approves it (OP-2).
Every step writes the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, insert, select, update

from console import audit
from console.accounts import Operator
from console.errors import Conflict, ConsoleError, Forbidden, NotFoundError, OperatorMissing
from console.preview import Preview, preview_decision
from console.queries import load_case, load_request
from console.roles import Permission, require
from console.tables import decision_proposals
from messages import MalformedMessage, parse_event
from messages.inbound import DisputeOutcome
from messages.registry import EVENT_MODELS
from policy.config import PolicySet
from policy.rows import load
from policy.rules.refunds import plan_refund
from policy.state import ContractState, TargetState
from policy.tables import contracts, targets

Publisher = Callable[[dict[str, object]], None]
"""Takes one inbound envelope and sends it (broker) or applies it (embedded); raises on failure."""

Clock = Callable[[], datetime]

PENDING = "pending"
DECISION_PERMISSION = {
    "dispute.resolved": Permission.DECIDE_DISPUTES,
    "refund.approved": Permission.DECIDE_REFUNDS,
    "refund.declined": Permission.DECIDE_REFUNDS,
}


def wall_clock() -> datetime:
    # Whole seconds, like the times upstream services send: a decision is a human act.
    return datetime.now(UTC).replace(microsecond=0)


def fit_to_contract(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` less the optional fields the installed message contract does not know yet.

    The console always names the contract and the operator (`contract_id`, `decided_by`);
    an engine whose models predate those fields would refuse the whole event as malformed.
    """
    model = EVENT_MODELS[type_].model_fields["data"].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    known = model.model_fields
    return {key: value for key, value in data.items() if key in known}


def build_envelope(
    type_: str, data: dict[str, Any], *, event_id: str, at: datetime
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "schema_version": 1,
        "data": fit_to_contract(type_, data),
    }
    try:
        parse_event(body)
    except MalformedMessage as exc:
        raise ConsoleError(f"the decision breaks the message contract ({exc})") from None
    return body


OutcomeStatus = Literal["published", "proposed", "rejected"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the console did with a decision: published it, or stored it as a proposal."""

    status: OutcomeStatus
    event_id: str | None
    proposal_id: str | None
    preview: Preview | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    proposal_id: str
    type: str
    subject_id: str
    contract_id: str
    currency: str
    moves_minor: int
    data: dict[str, Any]
    reason: str
    note: str
    proposed_by: str
    proposed_at: datetime
    status: str
    reviewed_by: str | None
    reviewed_at: datetime | None
    event_id: str | None


class DecisionDesk:
    """Where every decision of the console goes through; one per application."""

    def __init__(
        self,
        engine: Engine,
        policies: PolicySet,
        publisher: Publisher,
        *,
        four_eyes_above_minor: int,
        clock: Clock = wall_clock,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.publisher = publisher
        self.four_eyes_above_minor = four_eyes_above_minor
        self.clock = clock

    def preview(
        self, dispute_id: str, outcome: DisputeOutcome, amount_minor: int | None
    ) -> Preview:
        with self.engine.connect() as conn, conn.begin():
            case = load_case(conn, dispute_id)
            return preview_decision(
                conn,
                self.policies,
                case,
                outcome=outcome,
                amount_minor=amount_minor,
                at=self.clock(),
            )

    def decide_dispute(
        self,
        operator: Operator | None,
        dispute_id: str,
        outcome: DisputeOutcome,
        amount_minor: int | None,
        *,
        reason: str,
        note: str = "",
    ) -> Outcome:
        who = _require_operator(operator, Permission.DECIDE_DISPUTES)
        preview = self.preview(dispute_id, outcome, amount_minor)
        if preview.refused is not None:
            raise Conflict(f"the engine would refuse this decision ({preview.refused})")
        with self.engine.connect() as conn, conn.begin():
            case = load_case(conn, dispute_id)
        data: dict[str, Any] = {
            "dispute_id": dispute_id,
            "contract_id": case.dispute.contract_id,
            "outcome": outcome,
            "decided_by": who.name,
        }
        if outcome == "partial_refund":
            data["refund_amount_minor"] = amount_minor
        outcome_ = self._decide(
            who,
            type_="dispute.resolved",
            subject_id=dispute_id,
            contract_id=case.dispute.contract_id,
            currency=case.currency,
            moves_minor=preview.moves_minor,
            data=data,
            reason=reason,
            note=note,
        )
        return Outcome(outcome_.status, outcome_.event_id, outcome_.proposal_id, preview)

    def decide_refund(
        self,
        operator: Operator | None,
        request_id: str,
        *,
        approve: bool,
        amount_minor: int | None,
        reason: str,
        note: str = "",
    ) -> Outcome:
        """Support approves (all of the request, or `amount_minor`) or declines a request."""
        who = _require_operator(operator, Permission.DECIDE_REFUNDS)
        with self.engine.connect() as conn, conn.begin():
            request = load_request(conn, request_id)
            if request.status not in ("pending", "escalated"):
                raise Conflict(f"refund request {request_id!r} is {request.status}")
            target = load(conn, targets, TargetState, request.target_id)
            contract = load(conn, contracts, ContractState, request.contract_id)
        if target is None or contract is None:
            raise NotFoundError(f"the target or contract of {request_id!r} is not recorded")
        if not approve:
            data: dict[str, Any] = {
                "request_id": request_id,
                "contract_id": request.contract_id,
                "declined_by": "support",
                "decided_by": who.name,
            }
            return self._decide(
                who,
                type_="refund.declined",
                subject_id=request_id,
                contract_id=request.contract_id,
                currency=target.currency,
                moves_minor=0,
                data=data,
                reason=reason,
                note=note,
            )
        amount = amount_minor if amount_minor is not None else request.amount_minor
        if not 0 < amount <= target.refundable_minor:
            raise Conflict(
                f"the amount must be 1..{target.refundable_minor} (what {target.target_id} "
                "can still refund)"
            )
        plan = plan_refund(target, amount)
        data = {
            "contract_id": request.contract_id,
            "target_id": request.target_id,
            "amount_minor": amount,
            "approved_by": "support",
            "request_id": request_id,
            "decided_by": who.name,
        }
        moves = max(plan.paid_out_minor, plan.clawed_from_creator_minor)
        return self._decide(
            who,
            type_="refund.approved",
            subject_id=request_id,
            contract_id=request.contract_id,
            currency=target.currency,
            moves_minor=moves,
            data=data,
            reason=reason,
            note=note,
        )

    def _decide(
        self,
        who: Operator,
        *,
        type_: str,
        subject_id: str,
        contract_id: str,
        currency: str,
        moves_minor: int,
        data: dict[str, Any],
        reason: str,
        note: str,
    ) -> Outcome:
        reason = reason.strip()
        if not reason:
            raise ConsoleError("a decision gives its reason")
        if "\x00" in reason or "\x00" in note:
            # PostgreSQL text and JSON cannot hold NUL: refuse it here, not as a server error.
            raise ConsoleError("a reason or note may not contain NUL characters")
        at = self.clock()
        details = {"type": type_, "data": data, "reason": reason, "note": note}
        if moves_minor > self.four_eyes_above_minor:
            proposal_id = f"prop-{uuid.uuid4().hex[:16]}"
            # Validate now: a proposal that could never be published is refused at once.
            build_envelope(type_, data, event_id=f"console:{proposal_id}", at=at)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(decision_proposals).values(
                        proposal_id=proposal_id,
                        type=type_,
                        subject_id=subject_id,
                        contract_id=contract_id,
                        currency=currency,
                        moves_minor=moves_minor,
                        data=data,
                        reason=reason,
                        note=note,
                        proposed_by=who.name,
                        proposed_at=at,
                        status=PENDING,
                    )
                )
                audit.record(
                    conn,
                    at=at,
                    operator=who.name,
                    action="decision.proposed",
                    subject=subject_id,
                    details={**details, "proposal_id": proposal_id, "moves_minor": moves_minor},
                )
            return Outcome("proposed", None, proposal_id)
        event_id = f"console:{uuid.uuid4()}"
        envelope = build_envelope(type_, data, event_id=event_id, at=at)
        self.publisher(envelope)
        with self.engine.begin() as conn:
            audit.record(
                conn,
                at=at,
                operator=who.name,
                action="decision.published",
                subject=subject_id,
                details={**details, "event_id": event_id},
            )
        return Outcome("published", event_id, None)

    def proposals(self, *, status: str | None = PENDING) -> list[Proposal]:
        with self.engine.connect() as conn:
            query = select(decision_proposals).order_by(decision_proposals.c.proposed_at)
            if status is not None:
                query = query.where(decision_proposals.c.status == status)
            return [_proposal(row) for row in conn.execute(query)]

    def proposal(self, proposal_id: str) -> Proposal:
        with self.engine.connect() as conn:
            return _load_proposal(conn, proposal_id)

    def approve(self, operator: Operator | None, proposal_id: str) -> Outcome:
        """OP-2: a second operator approves; the event goes out with the proposer's name."""
        proposal = self.proposal(proposal_id)
        who = _require_operator(operator, DECISION_PERMISSION[proposal.type])
        if who.name == proposal.proposed_by:
            raise Forbidden("the operator who proposed a decision cannot approve it")
        at = self.clock()
        event_id = f"console:{proposal_id}"
        envelope = build_envelope(proposal.type, proposal.data, event_id=event_id, at=at)
        with self.engine.begin() as conn:
            _claim(conn, proposal_id, status="approved", who=who.name, at=at, event_id=event_id)
        try:
            self.publisher(envelope)
        except Exception:
            with self.engine.begin() as conn:
                conn.execute(
                    update(decision_proposals)
                    .where(decision_proposals.c.proposal_id == proposal_id)
                    .values(status=PENDING, reviewed_by=None, reviewed_at=None, event_id=None)
                )
            raise
        with self.engine.begin() as conn:
            audit.record(
                conn,
                at=at,
                operator=who.name,
                action="decision.approved",
                subject=proposal.subject_id,
                details={
                    "proposal_id": proposal_id,
                    "proposed_by": proposal.proposed_by,
                    "type": proposal.type,
                    "event_id": event_id,
                },
            )
        return Outcome("published", event_id, proposal_id)

    def reject(self, operator: Operator | None, proposal_id: str, *, reason: str) -> Outcome:
        proposal = self.proposal(proposal_id)
        who = _require_operator(operator, DECISION_PERMISSION[proposal.type])
        at = self.clock()
        with self.engine.begin() as conn:
            _claim(conn, proposal_id, status="rejected", who=who.name, at=at, event_id=None)
            audit.record(
                conn,
                at=at,
                operator=who.name,
                action="decision.rejected",
                subject=proposal.subject_id,
                details={"proposal_id": proposal_id, "reason": reason.strip()},
            )
        return Outcome("rejected", None, proposal_id)


def _require_operator(operator: Operator | None, permission: Permission) -> Operator:
    if operator is None or not operator.name:
        raise OperatorMissing("a decision names the operator who takes it (OP-1)")
    require(operator.role, permission)
    return operator


def _claim(
    conn: Connection,
    proposal_id: str,
    *,
    status: str,
    who: str,
    at: datetime,
    event_id: str | None,
) -> None:
    # Only a pending proposal changes: of two reviewers at once, one wins.
    claimed = conn.execute(
        update(decision_proposals)
        .where(
            decision_proposals.c.proposal_id == proposal_id,
            decision_proposals.c.status == PENDING,
        )
        .values(status=status, reviewed_by=who, reviewed_at=at, event_id=event_id)
    )
    if claimed.rowcount != 1:
        raise Conflict(f"proposal {proposal_id!r} is no longer pending")


def _load_proposal(conn: Connection, proposal_id: str) -> Proposal:
    row = conn.execute(
        select(decision_proposals).where(decision_proposals.c.proposal_id == proposal_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no proposal {proposal_id!r}")
    return _proposal(row)


def _proposal(row: Any) -> Proposal:
    return Proposal(
        proposal_id=row.proposal_id,
        type=row.type,
        subject_id=row.subject_id,
        contract_id=row.contract_id,
        currency=row.currency,
        moves_minor=row.moves_minor,
        data=dict(row.data),
        reason=row.reason,
        note=row.note,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        status=row.status,
        reviewed_by=row.reviewed_by,
        reviewed_at=row.reviewed_at,
        event_id=row.event_id,
    )
