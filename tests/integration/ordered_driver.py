"""Driving the ordered runtime on the real servers: start workers, publish, wait until the log
is settled, and read the outcome in the shape of the replay report, so a test compares the two.

The oracle is always `replay` of the lines in the order they were published, never the order
the runtime happened to apply them in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from ledger import Book, audit
from ledger.accounts import owner_side_balances
from messages import MalformedMessage, parse_event
from messages.publisher import EventPublisher
from policy.config import load_policies
from policy.tables import inbox, outbox
from workers.intake.tables import dead_letters, event_log, owed_ticks, parked_keys
from workers.replay import replay_lines

WAIT_S = 90.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll `condition` until it holds; fail, naming `what`, after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.05)


def well_formed(lines: Iterable[str]) -> list[str]:
    """The lines `recourse publish` sends: the others it refuses by line number, and the replay
    counts them as dead letters, so both sides leave them out of a comparison."""
    kept = []
    for line in lines:
        if not line.strip():
            continue
        try:
            parse_event(line)
        except MalformedMessage:
            continue
        kept.append(line)
    return kept


def publish(url: str, lines: Iterable[str]) -> int:
    """Publish every line in order on one channel; return how many were sent."""
    sent = 0
    with EventPublisher(url) as publisher:
        for line in lines:
            publisher.publish(line)
            sent += 1
    return sent


def logged(engine: Engine) -> int:
    with engine.connect() as conn:
        total: int = conn.execute(select(func.count()).select_from(event_log)).scalar_one()
        refused: int = conn.execute(
            select(func.count()).select_from(dead_letters).where(dead_letters.c.log_seq.is_(None))
        ).scalar_one()
    return total + refused


def settled(engine: Engine) -> bool:
    """Nothing pending in the log, no key parked, no deadline owed to a key that was parked."""
    with engine.connect() as conn:
        pending = conn.execute(
            select(func.count()).select_from(event_log).where(event_log.c.status == "pending")
        ).scalar_one()
        parked = conn.execute(select(func.count()).select_from(parked_keys)).scalar_one()
        owed = conn.execute(select(func.count()).select_from(owed_ticks)).scalar_one()
    return pending == 0 and parked == 0 and owed == 0


def wait_settled(engine: Engine, received: int, timeout_s: float = WAIT_S) -> None:
    wait_until(lambda: logged(engine) >= received, f"{received} messages received", timeout_s)
    wait_until(lambda: settled(engine), "the log to settle", timeout_s)


@dataclass
class Outcome:
    balances: dict[str, dict[str, int]]
    notifications: dict[str, dict[str, Any]]
    rejections: dict[str, str]
    dead_letters: dict[str, str]


def live_outcome(engine: Engine) -> Outcome:
    with engine.connect() as conn:
        assert audit(conn).ok
        balances = owner_side_balances(Book(conn).balances())
        bodies = conn.execute(select(outbox.c.body).order_by(outbox.c.seq)).scalars()
        notifications = [json.loads(body) for body in bodies]
        rejections = {
            row.event_id: row.reason
            for row in conn.execute(
                select(inbox.c.event_id, inbox.c.reason).where(inbox.c.result == "rejected")
            )
        }
        letters = {
            row.event_id: row.reason
            for row in conn.execute(select(dead_letters.c.event_id, dead_letters.c.reason))
        }
    return Outcome(
        balances,
        {_public(item)["notification_id"]: _public(item) for item in notifications},
        rejections,
        letters,
    )


def replay_outcome(lines: list[str], engine: Engine) -> Outcome:
    """The replay of `lines` in the order given, in the live outcome's shape: an event whose
    subject never came is a rejection there and a dead letter here (MESSAGES.md, "Replay
    report"), so it moves to the dead letters, with the notifications of its rejection."""
    report = replay_lines(engine, lines, load_policies())
    never_known = {
        item["event_id"] for item in report.rejections if item["reason"] == "unknown_subject"
    }
    notifications = {
        item["notification_id"]: _public(item)
        for item in report.notifications
        if not any(item["notification_id"].startswith(f"{event_id}:") for event_id in never_known)
    }
    rejections = {
        item["event_id"]: item["reason"]
        for item in report.rejections
        if item["event_id"] not in never_known
    }
    letters = dict.fromkeys(never_known, "unknown_subject")
    for item in report.dead_letters:
        if item["error"].startswith("idempotency_conflict"):
            event_id = json.loads(lines[item["line"] - 1])["event_id"]
            letters[event_id] = "idempotency_conflict"
    return Outcome(report.balances, notifications, rejections, letters)


def _public(notification: dict[str, Any]) -> dict[str, Any]:
    keys = ("notification_id", "type", "occurred_at", "recipients", "data")
    return {key: notification[key] for key in keys}


# Stories the targeted tests build: a contract opened and funded (and its work started).

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def envelope(event_id: str, type_: str, at: datetime, **data: Any) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "occurred_at": at.isoformat().replace("+00:00", "Z"),
            "schema_version": 1,
            "data": data,
        }
    )


def funded_contract(n: int, at: datetime = START, *, started: bool = True) -> list[str]:
    contract = f"c{n}"
    lines = [
        envelope(
            f"{contract}-open",
            "contract.opened",
            at,
            contract_id=contract,
            kind="fixed",
            client_id=f"client{n}",
            creator_id=f"creator{n}",
            currency="USD",
            policy="spectrum",
        ),
        envelope(
            f"{contract}-fund",
            "milestone.funded",
            at + timedelta(minutes=5),
            contract_id=contract,
            milestone_id=f"m{n}",
            payment_id=f"p{n}",
            amount_minor=10_000 + n,
            processor_fee_minor=300,
        ),
    ]
    if not started:
        return lines
    return [
        *lines,
        envelope(
            f"{contract}-work",
            "work.started",
            at + timedelta(minutes=10),
            contract_id=contract,
            milestone_id=f"m{n}",
            evidence="delivery",
        ),
    ]
