"""Replay: feed a JSON Lines file of events through the handlers on an embedded store.

The clock is the messages' own `occurred_at`. A malformed line is reported with its line number
and the validation error, and the replay goes on. Events are applied in file order inside a
transaction that commits every `COMMIT_EVERY` events: the same handlers and SQL as the workers,
without a round trip to disk per event. An event that is refused before it writes anything (a
malformed line, an idempotency conflict) needs no savepoint; one whose subject is unknown is
rejected with nothing of its own written (`_Batch` says how, without a savepoint per event).
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, inspect, literal_column, select, table

from ledger import Book
from ledger.accounts import owner_side_balances
from ledger.races import run_alone
from messages import MalformedMessage, parse_event
from messages.inbound import Envelope
from policy.apply import ApplyResult, apply_event
from policy.config import PolicySet
from policy.errors import IdempotencyConflict, UnknownSubject
from policy.tables import outbox
from store import read_cache

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
    own_database: bool = False,
) -> ReplayReport:
    """Apply every line of `lines` in order and return the report.

    `own_database`: nobody else writes the database while the replay runs (a throwaway file,
    as `recourse replay` makes without `--db`). The replay then caches its reads
    (`store.read_cache`, complete when the database holds no rows yet) and applies events
    without a savepoint each (`_Batch`); both would be wrong with another writer between its
    commits.
    """
    report = ReplayReport()
    with contextlib.ExitStack() as stack:
        freeze_survivors = stack.enter_context(_long_lived_frozen())
        conn = stack.enter_context(engine.connect())
        if own_database:
            with conn.begin():
                fresh = _holds_no_rows(conn)
            stack.enter_context(read_cache.single_writer(conn, complete=fresh))
        batch = _Batch(conn, policies, bare=own_database)
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
                result = batch.apply(event)
            except IdempotencyConflict as exc:
                report.dead_letters.append(
                    {"line": number, "error": f"idempotency_conflict: {exc}"}
                )
                continue
            if result.status == "rejected":
                report.rejections.append({"event_id": result.event_id, "reason": result.reason})
            elif result.status == "duplicate":
                report.duplicates += 1
            if len(batch) >= COMMIT_EVERY:
                batch.commit()
                freeze_survivors()
        batch.commit(last=True)
        with conn.begin():
            report.balances = owner_side_balances(Book(conn).balances())
            report.notifications = [
                _public_notification(json.loads(row.body))
                for row in conn.execute(select(outbox.c.body).order_by(outbox.c.seq))
            ]
    return report


class _Batch:
    """The events of one transaction, applied without a savepoint each until one needs it.

    An event whose subject is unknown is rejected, and only what it wrote may be undone. A
    savepoint around every event would do that at the cost of two statements an event, for
    what is rare in a replay. So, on a database the replay owns, events are applied bare; when
    one turns out to name an unknown subject, the transaction rolls back, the batch's earlier
    events are applied again (the handlers read nothing but the database, the event and the
    policies, so they do exactly what they did), and that event and the rest of the batch are
    applied inside savepoints. An idempotency conflict is refused before anything is written,
    in either mode.
    """

    def __init__(self, conn: Connection, policies: PolicySet, *, bare: bool) -> None:
        self._conn = conn
        self._policies = policies
        # Bare on a database nobody else writes: nor has the book a racing copy of a movement
        # to look out for.
        self._book = Book(conn, races=run_alone) if bare else Book(conn)
        self._applied: list[Envelope] = []
        # Bare events only when nobody else writes: another writer between the rollback and
        # the events applied again could change what they do.
        self._bare = bare
        self._careful = not bare
        self._transaction = conn.begin()

    def __len__(self) -> int:
        return len(self._applied)

    def apply(self, event: Envelope) -> ApplyResult:
        if self._careful:
            result = self._apply_in_savepoint(event)
        else:
            try:
                result = apply_event(self._conn, event, self._policies, book=self._book)
            except UnknownSubject:
                self._redo_without(event)
                self._careful = True
                result = self._apply_in_savepoint(event)
        self._applied.append(event)
        return result

    def commit(self, *, last: bool = False) -> None:
        self._transaction.commit()
        self._applied.clear()
        self._careful = not self._bare
        if not last:
            self._transaction = self._conn.begin()

    def _apply_in_savepoint(self, event: Envelope) -> ApplyResult:
        return apply_event(
            self._conn, event, self._policies, on_unknown_subject="reject", book=self._book
        )

    def _redo_without(self, failed: Envelope) -> None:
        # The rollback also puts the read cache back as it was (`store.read_cache` listens).
        self._transaction.rollback()
        self._transaction = self._conn.begin()
        for event in self._applied:
            try:
                apply_event(self._conn, event, self._policies, book=self._book)
            except UnknownSubject as exc:
                raise RuntimeError(
                    f"replaying {event.event_id!r} again before {failed.event_id!r} found an"
                    " unknown subject it had not found the first time"
                ) from exc


@contextlib.contextmanager
def _long_lived_frozen() -> Iterator[Callable[[], None]]:
    """A function that takes what is alive now out of the garbage collector's sight until the
    block ends.

    What a replay keeps grows with its file: the read caches, the report's notifications.
    Python's full collections walk every object alive, more often as they grow (100,000 events:
    a tenth of the replay's time). What survived a batch's commit stays to the end, so it is
    frozen there and unfrozen, collectable again, when the replay ends. A process that froze
    objects of its own (a server before it forks) is left as it is.
    """
    if gc.get_freeze_count():
        yield lambda: None
        return
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _holds_no_rows(conn: Connection) -> bool:
    """Whether the database holds its schema and nothing else (a file `recourse replay` has
    just made): its read caches can then know every row (`read_cache.is_complete`)."""
    for name in inspect(conn).get_table_names():
        if name == "alembic_version":
            continue
        if conn.execute(select(literal_column("1")).select_from(table(name)).limit(1)).first():
            return False
    return True


def _public_notification(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "notification_id": body["notification_id"],
        "type": body["type"],
        "occurred_at": body["occurred_at"],
        "recipients": body["recipients"],
        "data": body["data"],
    }
