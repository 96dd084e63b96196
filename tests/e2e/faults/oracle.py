"""The oracle: after a run, prove that the live system booked what a replay of the events in
the order they were published books, and that the faults lost nothing and applied nothing
twice.

The expectation is the replay (`workers.replay.replay_lines`) of the load's original events
in the order the driver recorded their publication (the order of the broker's confirms,
`tests.e2e.faults.driver.PublicationOrder`), on an embedded SQLite store: not the causal
order the generator wrote, not the order the runtime applied. Against it:

- the ledger audit is green on PostgreSQL, and every balance equals the replay's;
- event by event, the inbox result, the transfers (by their deterministic ids, accounts and
  amounts) and the outbox notifications equal the replay's: an event whose effects are
  missing was *lost*, one with more was *duplicated*;
- every expected notification reached `refunds.notifications` at least once, and
  deduplicated by `notification_id` exactly the replay's set, each with the replay's body;
- every poison message is a row of the `dead_letters` table with a right reason, nothing
  else is, and no poison reached the event log, the inbox or the ledger;
- nothing is left behind: `refunds.intake` empty with nothing unacked, nothing pending in
  the event log, no parked key, no tick owed to a key, no outbox row unsent;
- `recourse verify` (`workers.verify.verify`) re-applies the applied steps on a scratch
  store and finds the same books.
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
from messages.transport import INTAKE_QUEUE
from policy.config import load_policies
from policy.tables import inbox, outbox
from testbed.stories import Load
from tests.e2e.faults.poison import Poison
from tests.e2e.faults.servers import patiently, queue_depths
from workers.database import make_engine, migrate
from workers.intake.tables import dead_letters, event_log, owed_ticks, parked_keys
from workers.replay import ReplayReport, replay_lines
from workers.verify import verify

NOTIFICATIONS_QUEUE = "fault-run-notifications"
"""Bound to every routing key of the exchange before the engine starts: what a consumer sees."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A row of the `dead_letters` table, as much as the oracle reads of it."""

    reason: str
    routing_key: str | None
    event_id: str | None
    log_seq: int | None
    problems: str


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
    verify_steps: int = 0
    verify_same: bool = False
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


def expected_of(lines: list[str]) -> Expected:
    """Replay `lines` in the order given (a run's publication order) on a fresh SQLite store."""
    with tempfile.TemporaryDirectory(prefix="recourse-faults-replay-") as scratch:
        engine = make_engine(f"sqlite:///{Path(scratch) / 'replay.sqlite'}")
        try:
            migrate(engine)
            report = replay_lines(engine, lines, load_policies(), own_database=True)
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


def dead_letters_of(engine: Engine) -> list[DeadLetter]:
    with engine.connect() as conn:
        return [
            DeadLetter(
                str(row.reason),
                row.routing_key,
                row.event_id,
                row.log_seq,
                str(row.problems),
            )
            for row in conn.execute(
                select(
                    dead_letters.c.reason,
                    dead_letters.c.routing_key,
                    dead_letters.c.event_id,
                    dead_letters.c.log_seq,
                    dead_letters.c.problems,
                ).order_by(dead_letters.c.dead_letter_id)
            )
        ]


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
        self._dead_letters(engine, verdict)
        self._leftovers(engine, vhost, verdict)
        self._verify(engine, verdict)
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
            # Only the schedulers' own ticks and the fault runner's probes (ticks too) may be
            # there, and they fire nothing: the load is dated years after them.
            if effect.transfers or effect.notifications or effect.result == "rejected":
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
            # The driver publishes a key switch only once the events before it are applied,
            # so no event of the order it recorded comes before its subject.
            verdict.note("the replay met an unknown subject: the publication order is invalid")
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

    def _dead_letters(self, engine: Engine, verdict: Verdict) -> None:
        letters = dead_letters_of(engine)
        verdict.dead_letters = letters
        by_key = {poison.routing_key: poison for poison in self.poison}
        for poison in self.poison:
            if not any(letter.routing_key == poison.routing_key for letter in letters):
                verdict.note(f"poison {poison.name} is not in the dead_letters table")
        for letter in letters:
            sent = by_key.get(letter.routing_key or "")
            if sent is None:
                verdict.note(
                    f"a dead letter that is no poison: {letter.event_id} under "
                    f"{letter.routing_key!r} ({letter.reason}: {letter.problems[:200]})"
                )
            elif letter.reason not in sent.reasons:
                verdict.note(
                    f"poison {sent.name} dead-lettered as {letter.reason!r}, "
                    f"not {sorted(sent.reasons)}: {letter.problems[:200]}"
                )
            elif letter.log_seq is not None:
                verdict.note(f"poison {sent.name} reached the event log before refusal")
        poison_ids = {poison.event_id for poison in self.poison if poison.event_id}
        touched = poison_ids & set(self._inbox_ids(engine))
        if touched:
            verdict.note(f"poison reached the inbox: {sorted(touched)}")
        with engine.connect() as conn:
            logged: set[str] = set(
                conn.execute(
                    select(event_log.c.event_id).where(event_log.c.event_id.in_(poison_ids))
                ).scalars()
            )
        if logged:
            verdict.note(f"poison reached the event log: {sorted(logged)}")

    def _inbox_ids(self, engine: Engine) -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(select(inbox.c.event_id)).scalars())

    def _leftovers(self, engine: Engine, vhost: str, verdict: Verdict) -> None:
        verdict.problems.extend(leftovers(engine, vhost))

    def _verify(self, engine: Engine, verdict: Verdict) -> None:
        """`recourse verify`: the applied steps again on a scratch store, the same books."""
        verification = verify(engine, load_policies())
        verdict.verify_steps = verification.steps
        verdict.verify_same = verification.same
        if not verification.same:
            verdict.note(f"verify: {verification.as_json()}")


def leftovers(engine: Engine, vhost: str) -> list[str]:
    """What is not done yet: empty when the run has drained."""
    found = []
    depth = patiently(lambda: queue_depths(vhost)).get(INTAKE_QUEUE)
    if depth is None:
        found.append(f"{INTAKE_QUEUE} is missing")
    elif depth.total:
        found.append(f"{INTAKE_QUEUE} holds {depth.ready} ready and {depth.unacked} unacked")
    with engine.connect() as conn:
        for what, query in (
            (
                "event(s) pending in the event log",
                select(func.count()).select_from(event_log).where(event_log.c.status == "pending"),
            ),
            ("parked key(s)", select(func.count()).select_from(parked_keys)),
            ("tick(s) owed to a key", select(func.count()).select_from(owed_ticks)),
            (
                "outbox row(s) never sent",
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None)),
            ),
        ):
            left = int(conn.execute(query).scalar_one())
            if left:
                found.append(f"{left} {what}")
    return found
