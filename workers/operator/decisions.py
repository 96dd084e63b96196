"""`recourse decide`: the dispute team's decision, published as a `dispute.resolved` event.

The decision goes through the same queue and handler as every upstream event, so the engine
judges and books it like any other. It is checked here first, so an operator learns at once
what the engine would only refuse later: the envelope against the message contract, and, when
the database is at hand, that the dispute exists, is open, and can refund that much.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from messages import MalformedMessage, PublishError, parse_event
from messages.inbound import DisputeOutcome, Envelope
from messages.publisher import EventPublisher
from policy.rows import load
from policy.state import DisputeState, TargetState
from policy.tables import disputes, targets
from workers.operator.errors import NotFound, OperatorError, UsageProblem, safe_url
from workers.operator.formats import format_minor, iso

PARTIAL = "partial_refund"
PUBLISH_ATTEMPTS = 3
"""An operator waits at the prompt: a broker that is down is reported in about a second."""

BROKER_SCHEMES = ("amqp://", "amqps://")


@dataclass(frozen=True, slots=True)
class Decision:
    dispute_id: str
    outcome: DisputeOutcome
    amount_minor: int | None
    # The dispute's contract, which the event names (MESSAGES.md): given with --contract, or
    # read from the dispute when the database is at hand (`with_contract_of`).
    contract_id: str | None = None
    # Who decided (OP-1): --operator, or RECOURSE_OPERATOR; a decision without one is refused.
    decided_by: str | None = None


OPERATOR_VARIABLE = "RECOURSE_OPERATOR"


def operator_of(option: str | None, environment: dict[str, str]) -> str:
    """The operator who decides: --operator, else RECOURSE_OPERATOR; refused when neither."""
    operator = option or environment.get(OPERATOR_VARIABLE, "")
    if not operator.strip():
        raise UsageProblem(
            "a decision names the operator who made it (OP-1)",
            f"pass --operator YOUR_ID or set {OPERATOR_VARIABLE}",
        )
    return operator


def check_usage(decision: Decision) -> None:
    """Refuse what the message contract refuses, before anything is read or sent."""
    if decision.outcome == PARTIAL and decision.amount_minor is None:
        raise UsageProblem("partial_refund needs an amount", "pass --amount MINOR")
    if decision.outcome != PARTIAL and decision.amount_minor is not None:
        raise UsageProblem(
            f"--amount goes only with partial_refund, not {decision.outcome}",
            "drop --amount, or use --outcome partial_refund",
        )
    if decision.amount_minor is not None and decision.amount_minor <= 0:
        raise UsageProblem(
            f"--amount must be a positive number of minor units, not {decision.amount_minor}",
            "give the refund in cents, e.g. --amount 25000 for 250.00",
        )


def with_contract_of(decision: Decision, dispute: DisputeState | None) -> Decision:
    """`decision` naming its dispute's contract; refuses a --contract that is not the dispute's."""
    if dispute is None:
        if decision.contract_id is None:
            raise UsageProblem(
                "the event names the dispute's contract, and no database was checked",
                "pass --contract CONTRACT_ID",
            )
        return decision
    if decision.contract_id is not None and decision.contract_id != dispute.contract_id:
        raise UsageProblem(
            f"dispute {dispute.dispute_id!r} belongs to contract {dispute.contract_id!r}, "
            f"not {decision.contract_id!r}",
            "drop --contract, or fix it",
        )
    return dataclasses.replace(decision, contract_id=dispute.contract_id)


def envelope(decision: Decision, *, event_id: str | None, now: datetime) -> Envelope:
    """The `dispute.resolved` envelope of `decision`, validated against the contract."""
    data: dict[str, Any] = {
        "dispute_id": decision.dispute_id,
        "contract_id": decision.contract_id,
        "outcome": decision.outcome,
        "decided_by": decision.decided_by,
    }
    if decision.amount_minor is not None:
        data["refund_amount_minor"] = decision.amount_minor
    body = {
        "event_id": event_id or f"decide:{decision.dispute_id}:{uuid.uuid4()}",
        "type": "dispute.resolved",
        "occurred_at": iso(now),
        "schema_version": 1,
        "data": data,
    }
    try:
        return parse_event(body)
    except MalformedMessage as exc:
        raise UsageProblem(
            f"the decision breaks the message contract ({exc})", "fix the field it names"
        ) from None


def check_against_store(conn: Connection, decision: Decision, *, where: str) -> DisputeState:
    """Refuse a decision the engine would reject: unknown or closed dispute, too large."""
    dispute = load(conn, disputes, DisputeState, decision.dispute_id)
    if dispute is None:
        raise NotFound(
            "dispute",
            decision.dispute_id,
            where,
            "check the id with `recourse disputes --open` (or --no-check to publish anyway)",
        )
    if dispute.status != "open":
        raise OperatorError(
            f"dispute {dispute.dispute_id!r} is {dispute.status}"
            + (f" ({dispute.outcome})" if dispute.outcome else ""),
            f"only an open dispute takes a decision; see `recourse contract {dispute.contract_id}`",
        )
    target = load(conn, targets, TargetState, dispute.target_id)
    if (
        target is not None
        and decision.amount_minor is not None
        and decision.amount_minor > target.refundable_minor
    ):
        raise OperatorError(
            f"--amount {format_minor(decision.amount_minor, target.currency)} is more than "
            f"{target.target_id!r} can still refund "
            f"({format_minor(target.refundable_minor, target.currency)})",
            "lower --amount, or use --outcome full_refund",
        )
    return dispute


def require_broker(url: str | None) -> str:
    if not url:
        raise UsageProblem(
            "no broker to publish to", "set BROKER_URL or pass --broker amqp://USER:PASS@HOST/"
        )
    if not url.startswith(BROKER_SCHEMES):
        raise UsageProblem(
            f"bad broker URL {safe_url(url)!r}", "use amqp://USER:PASS@HOST:5672/VHOST"
        )
    return url


def publish(event: Envelope, broker_url: str, *, debug: bool) -> str:
    """Send `event` and wait for the broker's confirm; return the routing key it went with
    (its ordering key: the dispute's contract)."""
    try:
        with (
            _quiet_unless(debug),
            EventPublisher(broker_url, max_attempts=PUBLISH_ATTEMPTS) as publisher,
        ):
            return publisher.publish(event)
    except PublishError as exc:
        raise OperatorError(
            f"cannot publish to {safe_url(broker_url)} ({exc})",
            "check that RabbitMQ is running and that --broker or BROKER_URL point at it",
        ) from None


@contextmanager
def _quiet_unless(debug: bool) -> Iterator[None]:
    # The publisher and pika log every failed attempt; an operator gets one line instead.
    loggers = [logging.getLogger(name) for name in ("pika", "messages.publisher")]
    levels = [logger.level for logger in loggers]
    if not debug:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
