"""Append judged messages to the event log, or to the dead letters, in arrival order.

One batch is one transaction, and on PostgreSQL it first takes the intake's advisory lock (on
SQLite every transaction is exclusive): two intake consumers overlapping for a moment (a failover
while the old one still commits) then append one after the other, so log numbers rise in commit
order and a drain never sees a gap that a slower transaction fills later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

from messages import Envelope
from messages.ordering import TICK_KEY
from policy.apply import canonical_body
from workers.intake.judge import Accepted, Problems, Refused
from workers.intake.partitions import partition_of
from workers.intake.tables import dead_letters, event_log

INTAKE_LOCK = 0x5245_0001
"""The advisory lock id of the intake's appends (PostgreSQL)."""

BODY_KEPT = 256 * 1024
"""How much of a refused body a dead letter keeps: the largest body the contract allows."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message as the broker delivered it, judged."""

    verdict: Accepted | Refused
    body: bytes
    routing_key: str | None
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Appended:
    touched: set[int]
    """The partitions that got an event, plus -1 when a tick arrived (ticks belong to none)."""
    events: dict[int, Envelope]
    """The accepted events by log number, already parsed: a drain in the same process need not
    parse their bodies again."""


def append(conn: Connection, arrivals: Sequence[Arrival], *, now: datetime) -> Appended:
    """Write `arrivals` in order, events to the log and refusals to the dead letters."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": INTAKE_LOCK})
    rows: list[dict[str, object]] = []
    parsed: list[Envelope] = []
    dead: list[dict[str, object]] = []
    touched: set[int] = set()
    for arrival in arrivals:
        verdict = arrival.verdict
        if isinstance(verdict, Refused):
            dead.append(refused_row(arrival, verdict, now=now))
            continue
        event = verdict.event
        is_tick = verdict.ordering_key == TICK_KEY
        partition = -1 if is_tick else partition_of(verdict.ordering_key)
        touched.add(partition)
        parsed.append(event)
        rows.append(
            {
                "kind": "tick" if is_tick else "event",
                "ordering_key": verdict.ordering_key,
                "partition": partition,
                "event_id": event.event_id,
                "event_type": event.type,
                "occurred_at": event.occurred_at,
                "producer": verdict.producer,
                "body": canonical_body(event.model_dump(mode="json")),
                "received_at": now,
                "status": "pending",
            }
        )
    events: dict[int, Envelope] = {}
    if rows:
        # Numbered here, under the intake's lock, rather than by the column's sequence: the
        # numbers then follow the arrival order by construction, and the rows go in one
        # statement.
        first: int = conn.execute(select(func.coalesce(func.max(event_log.c.seq), 0))).scalar_one()
        for number, (row, event) in enumerate(zip(rows, parsed, strict=True), start=first + 1):
            row["seq"] = number
            events[number] = event
        conn.execute(insert(event_log), rows)
    if dead:
        conn.execute(insert(dead_letters), dead)
    return Appended(touched, events)


def refused_row(arrival: Arrival, verdict: Refused, *, now: datetime) -> dict[str, object]:
    event = verdict.event
    return dead_letter_row(
        reason=verdict.reason,
        problems=verdict.problems,
        body=arrival.body,
        event_id=event.event_id if event else None,
        event_type=event.type if event else None,
        routing_key=arrival.routing_key,
        producer=arrival.user_id,
        received_at=now,
        dead_at=now,
    )


def dead_letter_row(
    *,
    reason: str,
    problems: Problems,
    body: bytes | str,
    event_id: str | None,
    event_type: str | None,
    routing_key: str | None,
    producer: str | None,
    received_at: datetime,
    dead_at: datetime,
    log_seq: int | None = None,
) -> dict[str, object]:
    """A `dead_letters` row. The body is kept as text, at most `BODY_KEPT` characters, with
    anything undecodable replaced, so any tool can show any dead letter."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "replace")
    return {
        "log_seq": log_seq,
        "reason": reason,
        "problems": json.dumps(
            [[_storable(field)[:200], _storable(problem)[:500]] for field, problem in problems[:50]]
        ),
        "event_id": event_id,
        "event_type": event_type,
        "routing_key": _storable(routing_key)[:256] if routing_key is not None else None,
        "producer": _storable(producer)[:128] if producer is not None else None,
        "body": _storable(raw[:BODY_KEPT].decode("utf-8", "replace")),
        "body_bytes": len(raw),
        "received_at": received_at,
        "dead_at": dead_at,
    }


def _storable(value: str) -> str:
    # PostgreSQL's text cannot hold NUL, and a batch that fails on one would be redelivered
    # for ever: the character is replaced, as undecodable bytes are.
    return value.replace("\x00", "\ufffd")
