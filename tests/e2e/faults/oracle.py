"""The oracle: after a run, prove that the faults lost nothing and applied nothing twice.

The expectation is the replay (`workers.replay.replay_lines`) of the same load in its causal
order on an embedded SQLite store: the engine's own handlers with nothing broken. Against it:

- the ledger audit is green on PostgreSQL, and every balance equals the replay's;
- event by event, the inbox result, the transfers (by their deterministic ids, accounts and
  amounts) and the outbox notifications equal the replay's: an event whose effects are
  missing was *lost*, one with more was *duplicated*;
- every expected notification reached `refunds.notifications` at least once, and
  deduplicated by `notification_id` exactly the replay's set, each with the replay's body;
- every poison message sits in a dead-letter queue with a right reason, nothing else does,
  and no poison reached the inbox or the ledger;
- nothing is left unacked or queued (work and delay queues empty) and no outbox row unsent.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import aliased

from ledger import Book, audit
from ledger.accounts import owner_side_balances
from ledger.tables import accounts, transfers
from messages.transport import EVENTS_QUEUE, TICKS_QUEUE, dead_letter_queue, delay_queue
from policy.config import load_policies
from policy.tables import inbox, outbox
from tests.e2e.faults.poison import Poison
from tests.e2e.faults.servers import patiently, queue_depths
from tests.e2e.story_generator import Load
from workers.database import make_engine, migrate
from workers.dlq import DeadLetter, DeadLetterQueues
from workers.replay import ReplayReport, replay_lines

NOTIFICATIONS_QUEUE = "fault-run-notifications"
"""Bound to every routing key of the exchange before the engine starts: what a consumer sees."""

WORK_QUEUES = tuple(
    name for queue in (EVENTS_QUEUE, TICKS_QUEUE) for name in (queue, delay_queue(queue))
)
DEAD_LETTER_QUEUES = (dead_letter_queue(EVENTS_QUEUE), dead_letter_queue(TICKS_QUEUE))

Transfer = tuple[str, str, str, str, int, str]
"""transfer_id, kind, debit account, credit account, amount, code."""


@dataclass(frozen=True, slots=True)
class Effect:
    """What one event did: its inbox verdict, its transfers and its notifications."""

    result: str
    reason: str | None
    transfers: frozenset[Transfer]
    notifications: frozenset[str]


@dataclass
class Expected:
    report: ReplayReport
    effects: dict[str, Effect]
    bodies: dict[str, dict[str, Any]]


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    diverged: set[str] = field(default_factory=set)
    notifications_expected: int = 0
    notifications_received: int = 0
    notifications_distinct: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    audit_ok: bool = False
    accounts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def note(self, problem: str) -> None:
        self.problems.append(problem)


def effects_of(conn: Connection) -> dict[str, Effect]:
    """Every handled event's effect as stored, by event id."""
    debit, credit = aliased(accounts), aliased(accounts)
    moved: dict[str, set[Transfer]] = {}
    for row in conn.execute(
        select(
            transfers.c.event_id,
            transfers.c.transfer_id,
            transfers.c.kind,
            debit.c.name.label("debit"),
            credit.c.name.label("credit"),
            transfers.c.amount_minor,
            transfers.c.code,
        )
        .join(debit, debit.c.id == transfers.c.debit_account_id)
        .join(credit, credit.c.id == transfers.c.credit_account_id)
    ):
        moved.setdefault(str(row.event_id), set()).add(
            (
                str(row.transfer_id),
                str(row.kind),
                str(row.debit),
                str(row.credit),
                int(row.amount_minor),
                str(row.code),
            )
        )
    told: dict[str, set[str]] = {}
    for row in conn.execute(select(outbox.c.event_id, outbox.c.notification_id)):
        told.setdefault(str(row.event_id), set()).add(str(row.notification_id))
    found: dict[str, Effect] = {}
    for row in conn.execute(select(inbox.c.event_id, inbox.c.result, inbox.c.reason)):
        event_id = str(row.event_id)
        found[event_id] = Effect(
            str(row.result),
            None if row.reason is None else str(row.reason),
            frozenset(moved.pop(event_id, set())),
            frozenset(told.pop(event_id, set())),
        )
    for event_id in set(moved) | set(told):
        # Effects of an event the inbox does not hold: impossible unless the unit of work broke.
        found[f"<no inbox row> {event_id}"] = Effect(
            "missing",
            None,
            frozenset(moved.get(event_id, set())),
            frozenset(told.get(event_id, set())),
        )
    return found


def expected_of(load: Load) -> Expected:
    """Replay the load in its causal order on a fresh SQLite store."""
    with tempfile.TemporaryDirectory(prefix="recourse-faults-replay-") as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'replay.sqlite'}")
        try:
            migrate(engine)
            report = replay_lines(engine, load.causal_lines(), load_policies())
            with engine.connect() as conn:
                effects = effects_of(conn)
        finally:
            engine.dispose()
    bodies = {item["notification_id"]: item for item in report.notifications}
    return Expected(report, effects, bodies)


def classify(expected: Effect | None, actual: Effect | None) -> str | None:
    """`lost`, `duplicated` or `diverged` when the two differ, else None."""
    if expected == actual:
        return None
    if actual is None:
        return "lost"
    if expected is None:
        return "duplicated"
    if (expected.result, expected.reason) != (actual.result, actual.reason):
        return "diverged"
    if actual.transfers <= expected.transfers and actual.notifications <= expected.notifications:
        return "lost"
    if actual.transfers >= expected.transfers and actual.notifications >= expected.notifications:
        return "duplicated"
    return "diverged"


def received_notifications(broker_url: str) -> list[dict[str, Any]]:
    """Everything the exchange delivered to the run's consumer queue, copies included.

    Read without acking, so that a broker restart in the middle loses nothing: the read
    starts again and finds every message back in the queue.
    """
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        received = []
        for method, _properties, body in channel.consume(
            NOTIFICATIONS_QUEUE, inactivity_timeout=2.0
        ):
            if method is None:
                break
            received.append(json.loads(body))
        return received
    finally:
        if connection.is_open:
            connection.close()


def dead_letters(broker_url: str) -> list[DeadLetter]:
    with DeadLetterQueues(broker_url) as queues:
        return [letter for queue in DEAD_LETTER_QUEUES for letter in queues.peek(queue)]


def public(body: dict[str, Any]) -> dict[str, Any]:
    keys = ("notification_id", "type", "occurred_at", "recipients", "data")
    return {key: body.get(key) for key in keys}


@dataclass
class Oracle:
    load: Load
    expected: Expected
    poison: list[Poison]
    load_ids: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.load_ids = {event.event_id for event in self.load.causal_events()}

    def judge(self, engine: Engine, broker_url: str, vhost: str) -> Verdict:
        verdict = Verdict()
        self.check_books(engine, verdict)
        self.check_events(engine, verdict)
        self._notifications(broker_url, verdict)
        self._dead_letters(broker_url, engine, verdict)
        self._leftovers(engine, vhost, verdict)
        return verdict

    def check_books(self, engine: Engine, verdict: Verdict) -> None:
        """The audit, and every balance against the replay's."""
        # One snapshot for the whole audit (SQLite's transactions always are one).
        snapshot = "REPEATABLE READ" if engine.dialect.name == "postgresql" else "SERIALIZABLE"
        with engine.connect().execution_options(isolation_level=snapshot) as conn:
            report = audit(conn)
            balances = owner_side_balances(Book(conn).balances())
        verdict.audit_ok = report.ok
        verdict.accounts = report.accounts_checked
        if not report.ok:
            verdict.note(f"audit: {report.problems[:5]}")
        wanted = self.expected.report.balances
        differing = sorted(
            name for name in set(wanted) | set(balances) if wanted.get(name) != balances.get(name)
        )
        if differing:
            shown = [(name, wanted.get(name), balances.get(name)) for name in differing[:5]]
            verdict.note(f"{len(differing)} balance(s) differ from the replay: {shown}")

    def check_events(self, engine: Engine, verdict: Verdict) -> None:
        """Event by event, what the store holds against what the replay did."""
        with engine.connect() as conn:
            actual = effects_of(conn)
        others = {
            event_id: effect for event_id, effect in actual.items() if event_id not in self.load_ids
        }
        for event_id, effect in others.items():
            # Only the schedulers' own ticks may be there, and they fire nothing: the load
            # is dated after them.
            if effect.transfers or effect.notifications or effect.result != "applied":
                verdict.note(f"an event outside the load did something: {event_id} {effect}")
        for event_id in sorted(self.load_ids):
            kind = classify(self.expected.effects.get(event_id), actual.get(event_id))
            if kind is not None:
                getattr(verdict, kind).add(event_id)
        for kind in ("lost", "duplicated", "diverged"):
            found = sorted(getattr(verdict, kind))
            if found:
                verdict.note(f"{len(found)} event(s) {kind}: {found[:8]}")
        rejected = {(item["event_id"], item["reason"]) for item in self.expected.report.rejections}
        if any(reason == "unknown_subject" for _, reason in rejected):
            verdict.note("the causal replay itself met an unknown subject: the load is invalid")
        if self.expected.report.dead_letters:
            verdict.note(f"the replay dead-lettered {self.expected.report.dead_letters[:3]}")

    def _notifications(self, broker_url: str, verdict: Verdict) -> None:
        received = patiently(lambda: received_notifications(broker_url))
        counts = Counter(item["notification_id"] for item in received)
        wanted = set(self.expected.bodies)
        verdict.notifications_expected = len(wanted)
        verdict.notifications_received = len(received)
        verdict.notifications_distinct = len(counts)
        missing = sorted(wanted - set(counts))
        extra = sorted(set(counts) - wanted)
        if missing:
            verdict.note(f"{len(missing)} notification(s) never published: {missing[:5]}")
        if extra:
            verdict.note(f"{len(extra)} notification(s) the replay does not emit: {extra[:5]}")
        for item in received:
            expected = self.expected.bodies.get(item["notification_id"])
            if expected is not None and public(item) != public(expected):
                verdict.note(f"notification {item['notification_id']} differs from the replay")
                break

    def _dead_letters(self, broker_url: str, engine: Engine, verdict: Verdict) -> None:
        letters = patiently(lambda: dead_letters(broker_url))
        verdict.dead_letters = letters
        matched: set[int] = set()
        for poison in self.poison:
            mine = [
                index
                for index, letter in enumerate(letters)
                if (
                    letter.message_id == poison.message_id
                    if poison.message_id
                    else letter.body == poison.body
                )
            ]
            if not mine:
                verdict.note(f"poison {poison.name} is not in a dead-letter queue")
            for index in mine:
                if letters[index].reason not in poison.reasons:
                    verdict.note(
                        f"poison {poison.name} dead-lettered as {letters[index].reason!r}, "
                        f"not {sorted(poison.reasons)}"
                    )
            matched.update(mine)
        for index, letter in enumerate(letters):
            if index not in matched:
                verdict.note(
                    f"a dead letter that is no poison: {letter.event_id} ({letter.reason}: "
                    f"{letter.error[:200]})"
                )
        touched = {poison.event_id for poison in self.poison if poison.event_id} & set(
            self._inbox_ids(engine)
        )
        if touched:
            verdict.note(f"poison reached the inbox: {sorted(touched)}")

    def _inbox_ids(self, engine: Engine) -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(select(inbox.c.event_id)).scalars())

    def _leftovers(self, engine: Engine, vhost: str, verdict: Verdict) -> None:
        depths = patiently(lambda: queue_depths(vhost))
        for name in WORK_QUEUES:
            depth = depths.get(name)
            if depth is not None and depth.total:
                verdict.note(f"{name} still holds {depth.ready} ready and {depth.unacked} unacked")
        with engine.connect() as conn:
            unsent = conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            ).scalar_one()
        if unsent:
            verdict.note(f"{unsent} outbox row(s) never sent")
