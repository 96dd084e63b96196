"""Replay: feed a JSON Lines file of events through the handlers on an embedded store.

The clock is the messages' own `occurred_at`. A malformed line is reported with its line number
and the validation error, and the replay goes on. Events are applied in file order inside a
transaction that commits every `COMMIT_EVERY` events: the same handlers and SQL as the workers,
without a round trip to disk per event. An event that is refused before it writes anything (a
malformed line, an idempotency conflict) needs no savepoint; `apply_event` keeps the handler's
own writes in one, so an unknown subject rolls back to a clean rejection.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from ledger import Book, read_cache
from ledger.accounts import owner_side_balances
from messages import MalformedMessage, parse_event
from policy.apply import apply_event
from policy.config import PolicySet
from policy.errors import IdempotencyConflict
from policy.tables import outbox

COMMIT_EVERY = 1000


@dataclass
class ReplayReport:
    """The report of MESSAGES.md: balances, notifications, rejections, dead letters."""

    balances: dict[str, dict[str, int]] = field(default_factory=dict)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    events_read: int = 0
    duplicates: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "balances": self.balances,
            "notifications": self.notifications,
            "rejections": self.rejections,
            "dead_letters": self.dead_letters,
        }


def replay_lines(
    engine: Engine,
    lines: Iterable[str],
    policies: PolicySet,
    *,
    progress: Callable[[int], None] | None = None,
) -> ReplayReport:
    """Apply every line of `lines` in order and return the report."""
    report = ReplayReport()
    # The replay's file is its own and it applies one event at a time: its reads may be cached.
    with engine.connect() as conn, read_cache.single_writer(conn):
        transaction = conn.begin()
        pending = 0
        for number, line in enumerate(lines, start=1):
            if progress is not None:
                progress(number)
            if not line.strip():
                continue
            report.events_read += 1
            try:
                event = parse_event(line)
            except MalformedMessage as exc:
                report.dead_letters.append({"line": number, "error": str(exc)})
                continue
            try:
                # No savepoint of its own: apply_event refuses a conflict before it writes, and
                # any other error ends the replay.
                result = apply_event(conn, event, policies, on_unknown_subject="reject")
            except IdempotencyConflict as exc:
                report.dead_letters.append(
                    {"line": number, "error": f"idempotency_conflict: {exc}"}
                )
                continue
            if result.status == "rejected":
                report.rejections.append({"event_id": result.event_id, "reason": result.reason})
            elif result.status == "duplicate":
                report.duplicates += 1
            pending += 1
            if pending >= COMMIT_EVERY:
                transaction.commit()
                transaction = conn.begin()
                pending = 0
        transaction.commit()
        with conn.begin():
            report.balances = owner_side_balances(Book(conn).balances())
            report.notifications = [
                _public_notification(json.loads(row.body))
                for row in conn.execute(select(outbox.c.body).order_by(outbox.c.seq))
            ]
    return report


def _public_notification(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": body["notification_id"],
        "type": body["type"],
        "occurred_at": body["occurred_at"],
        "recipients": body["recipients"],
        "data": body["data"],
    }
