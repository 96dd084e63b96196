"""Drain one partition: apply its pending events in log order, several to a transaction.

A drain holds its partition's advisory lock (PostgreSQL, per transaction) while it works, so
one thread at a time applies a partition, whatever the processes; on SQLite every transaction
is already exclusive. A thread that finds the lock taken leaves: the holder looks again after
it lets go, so nothing that arrived meanwhile is left behind.

Each batch reads the partition's pending events below the next unfired tick (a tick is a
barrier: `barrier`), skipping keys that are parked, and applies each in a savepoint:

- applied, rejected or a duplicate: the event is done;
- its subject not known yet: the key is parked (`parking`); its later events wait;
- the same `event_id` with another body: dead-lettered `idempotency_conflict`;
- an unexpected error: the key is parked and the event tried again with backoff, then
  dead-lettered `handler_error`;
- a collision with another transaction (deadlock, serialization): the batch commits what it
  did and the event is tried again at once in the next one.

The batch commits, and only then are its effects visible; notifications wait in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, NamedTuple

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError

from ledger.balances import lock_hot_shard, posting_shard_scope
from messages import Envelope, MalformedMessage, parse_event
from messages.inbound import DeadlineTickEvent
from messages.ordering import KEY_FIELD_BY_TYPE, TICK_KEY, ordering_key
from policy.apply import ApplyResult, apply_event
from policy.config import PolicySet
from policy.context import DeadlineScope, HandlerContext
from policy.errors import IdempotencyConflict, UnknownSubject
from policy.ticks import fire_deadlines
from store.pipelining import deferred_writes
from store.prepared import Prepared
from store.savepoints import savepoint
from workers.errors import is_contention
from workers.intake.log import dead_letter_row
from workers.intake.partitions import partition_of
from workers.intake.steps import Steps
from workers.intake.tables import dead_letters, event_log, owed_ticks, parked_keys
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)

BATCH_SIZE = 16
"""Events a drain applies in one transaction (APPLY_BATCH_SIZE): one commit for all of them."""

INLINE_LIMIT = 48
"""Pending events the intake reads to apply in the transaction that appends them
(`apply_arrived`), across partitions: each takes a savepoint, and past 64 subtransactions in
one transaction PostgreSQL's snapshots slow down for every session."""

LOCK_TIMEOUT = "250ms"
"""How long a drain's statement waits for a row lock before it gives the batch up (see
`_lock_partition`): longer than a batch normally holds one, far shorter than a deadlock costs."""

TICKS_PARTITION = -1
"""What the intake reports for a tick that arrived (ticks belong to no partition)."""

PARTITION_LOCK_CLASS = 0x5245
"""The first key of the partitions' advisory locks (PostgreSQL); the partition is the second."""


@dataclass(frozen=True, slots=True)
class RetryBudget:
    unknown_subject_seconds: float = 600.0
    error_max_retries: int = 5
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000

    def backoff(self, attempts: int) -> timedelta:
        """Exponential: min, 2 x min, 4 x min... capped."""
        return timedelta(
            milliseconds=min(self.min_backoff_ms << min(attempts - 1, 32), self.max_backoff_ms)
        )


class Progress(Enum):
    MORE = "more"  # a full batch: there may be more
    DRAINED = "drained"  # nothing left to apply below the barrier
    BUSY = "busy"  # another thread holds the partition


@dataclass
class _Parked:
    head_seq: int
    reason: str
    attempts: int
    first_failed_at: datetime
    retry_at: datetime


class _Collision(Exception):
    """Another transaction collided with this one: commit the batch so far, go again."""


class Drainer:
    def __init__(
        self,
        engine: Engine,
        policies: PolicySet,
        *,
        budget: RetryBudget,
        retry_later: Callable[[int, float], None],
        metrics: EngineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.budget = budget
        self.retry_later = retry_later
        """Called with a partition and a delay in seconds when a parked key is due later."""
        self.metrics = metrics
        self.clock = clock
        self.batch_size = batch_size

    def drain(self, partition: int) -> Progress:
        """Apply what the partition has to apply, batch after batch, then look once more after
        letting go of the lock. DRAINED or BUSY."""
        while True:
            progress = self.batch(partition)
            if progress is Progress.MORE:
                continue
            if progress is Progress.BUSY or not self.has_work(partition):
                return progress

    def batch(self, partition: int) -> Progress:
        try:
            with (
                self.engine.begin() as conn,
                deferred_writes(conn),
                posting_shard_scope(partition),
            ):
                if not _lock_partition(conn, partition):
                    return Progress.BUSY
                if conn.dialect.name == "postgresql":
                    lock_hot_shard(conn, partition)
                return _Batch(self, conn, partition).run()
        except _Collision:
            return Progress.MORE

    def apply_arrived(
        self,
        conn: Connection,
        touched: set[int],
        events: dict[int, Envelope],
        *,
        fire_tick: Callable[[Connection], bool] | None = None,
    ) -> set[int]:
        """Apply a batch in the intake's own transaction, right after it is appended: ordered
        intake with group commit. Each touched partition that no drain holds is applied as a
        drain would (its older pending events first, parked keys, owed deadlines, the barrier)
        and stays locked until the intake commits; `events` spares parsing the bodies again.
        When a tick arrived, `fire_tick` fires the oldest unfired tick in the same transaction
        once every event before it is done (False when it cannot), and the events behind it go
        on. Returns what is left to the drains: partitions held elsewhere or not finished, and
        -1 when a tick arrived.

        The partitions' locks, owed deadlines, parked keys and pending events are each read in
        one statement for all of them, and the steps and done marks written in one each, so a
        batch spread over many partitions costs what one drain's batch does. The hot-account
        shards are not locked first, as a drain locks its own: the intake holds several
        partitions, whose shards no drain takes, and a tick's posting that meets one waits at
        most LOCK_TIMEOUT before the event is left to a drain (`_Collision`)."""
        wanted = sorted(partition for partition in touched if partition >= 0)
        locked = _lock_partitions(conn, wanted)
        left = {partition for partition in touched if partition not in locked}
        if not locked:
            return left
        outcome = _Inline()
        with deferred_writes(conn):
            while True:
                self._apply_locked(conn, locked, events, outcome)
                tick_came = TICKS_PARTITION in touched
                if not tick_came or fire_tick is None or not fire_tick(conn):
                    break
        for seq, event in events.items():
            key = ordering_key(event)
            # Behind an unfired tick an arrival waits: the barrier's nudge after that tick may
            # have looked before this transaction commits, so the drain is nudged too.
            if key != TICK_KEY and seq not in outcome.handled and key not in outcome.parked:
                left.add(partition_of(key))
        return left | outcome.more

    def _apply_locked(
        self,
        conn: Connection,
        locked: list[int],
        events: dict[int, Envelope],
        outcome: _Inline,
    ) -> None:
        owed = _owed_of(conn, locked)
        parked = _parked_of(conn, locked)
        rows = _applicable_of(conn, locked, limit=INLINE_LIMIT - outcome.examined)
        outcome.examined += len(rows)
        full = outcome.examined >= INLINE_LIMIT
        by_partition: dict[int, list[_Pending]] = {}
        for row in rows:
            by_partition.setdefault(partition_of(row.ordering_key), []).append(row)
        writes = _Writes()
        for partition in locked:
            batch = _Batch(
                self,
                conn,
                partition,
                known=events,
                owed=owed.get(partition, {}),
                parked=parked.get(partition, {}),
                writes=writes,
            )
            with posting_shard_scope(partition):
                progress = batch.run(by_partition.get(partition, []))
            outcome.handled |= batch.handled
            outcome.parked |= set(batch.parked)
            if progress is Progress.MORE or (full and partition in by_partition):
                outcome.more.add(partition)
        # Written now: a tick fired next looks for the events before it still pending.
        writes.write(conn)

    def has_work(self, partition: int) -> bool:
        """Whether the partition has an event it could apply now, a parked key due for another
        try, or deadlines owed to a key (one statement)."""
        with self.engine.connect() as conn:
            found = _HAS_WORK.first(conn, {"partition": partition, "now": self.clock()})
        return bool(found and found[0])

    def partitions_with_work(self) -> set[int]:
        """Every partition with an event it could apply now, a parked key due for another try,
        or owed deadlines (these last are checked by the drain itself)."""
        now = self.clock()
        with self.engine.connect() as conn:
            barrier = next_tick_seq(conn)
            pending = select(event_log.c.partition).where(
                event_log.c.status == "pending",
                event_log.c.kind == "event",
                ~exists().where(parked_keys.c.ordering_key == event_log.c.ordering_key),
            )
            if barrier is not None:
                pending = pending.where(event_log.c.seq < barrier)
            found: set[int] = set(conn.execute(pending.distinct()).scalars())
            found.update(
                conn.execute(
                    select(parked_keys.c.partition).where(parked_keys.c.retry_at <= now).distinct()
                ).scalars()
            )
            found.update(conn.execute(select(owed_ticks.c.partition).distinct()).scalars())
        return found

    def tick_waiting(self) -> bool:
        with self.engine.connect() as conn:
            return next_tick_seq(conn) is not None


def next_tick_seq(conn: Connection) -> int | None:
    """The log number of the oldest unfired tick: no event after it is applied before it."""
    found: int | None = conn.execute(
        select(event_log.c.seq)
        .where(event_log.c.status == "pending", event_log.c.kind == "tick")
        .order_by(event_log.c.seq)
        .limit(1)
    ).scalar()
    return found


def _lock_partition(conn: Connection, partition: int) -> bool:
    """Take the partition for this transaction, and bound its row-lock waits.

    A batch holds the rows of every event it applied until it commits, taken event after
    event, so two batches that share a user's balance can take them in opposite orders: a
    deadlock PostgreSQL breaks only after `deadlock_timeout` (a second), while every batch
    queued behind them waits. With LOCK_TIMEOUT a wait that long fails instead: the batch
    commits what it did, which lets the other go on, and tries the event again at once."""
    if conn.dialect.name != "postgresql":
        return True
    found = _LOCK_PARTITION.first(
        conn, {"timeout": LOCK_TIMEOUT, "class_id": PARTITION_LOCK_CLASS, "partition": partition}
    )
    return bool(found and found[0])


# Prepared once (`store.prepared`): every drain runs these, often for an event or two.
_LOCK_PARTITION = Prepared(
    text(
        "SELECT set_config('lock_timeout', :timeout, true) IS NOT NULL"
        " AND pg_try_advisory_xact_lock(:class_id, :partition)"
    )
)


class _Pending(NamedTuple):
    seq: int
    ordering_key: str
    event_type: str
    body: str
    received_at: datetime
    producer: str


def _applicable(conn: Connection, partition: int, *, limit: int) -> list[_Pending]:
    """Pending events of the partition below the barrier whose key is not parked, in order."""
    statement = _APPLICABLE.get(limit)
    if statement is None:
        statement = _APPLICABLE[limit] = Prepared(_applicable_query().limit(limit))
    return [_Pending(*row) for row in statement.rows(conn, {"partition": partition})]


_APPLICABLE: dict[int, Prepared] = {}

_PENDING_COLUMNS = (
    event_log.c.seq,
    event_log.c.ordering_key,
    event_log.c.event_type,
    event_log.c.body,
    event_log.c.received_at,
    event_log.c.producer,
)
"""What a drain reads of a pending event: the fields of `_Pending`, in order."""

_HEAD = Prepared(select(*_PENDING_COLUMNS).where(event_log.c.seq == bindparam("head_seq")))


def _applicable_query(in_partition: Any = None) -> Select[Any]:
    """Pending events of the partition `:partition` whose key is not parked, below the oldest
    unfired tick, in log order. The barrier is looked up inside the same statement, so the rows
    and the barrier come from one snapshot: a tick and the events after it committed by the
    intake between two statements could otherwise let those events through ahead of the
    tick."""
    next_tick = (
        select(func.min(event_log.c.seq))
        .where(event_log.c.status == "pending", event_log.c.kind == "tick")
        .scalar_subquery()
    )
    return (
        select(*_PENDING_COLUMNS)
        .where(
            event_log.c.partition == bindparam("partition")
            if in_partition is None
            else in_partition,
            event_log.c.status == "pending",
            ~exists().where(parked_keys.c.ordering_key == event_log.c.ordering_key),
            or_(next_tick.is_(None), event_log.c.seq < next_tick),
        )
        .order_by(event_log.c.seq)
    )


def _owed_ready(conn: Connection, partition: int) -> list[Any]:
    """Owed deadlines of free keys with no pending event before their tick: fire them now."""
    earlier = (
        select(event_log.c.seq)
        .where(
            event_log.c.ordering_key == owed_ticks.c.ordering_key,
            event_log.c.status == "pending",
            event_log.c.seq < owed_ticks.c.tick_seq,
        )
        .exists()
    )
    parked = select(parked_keys.c.ordering_key).where(
        parked_keys.c.ordering_key == owed_ticks.c.ordering_key
    )
    return list(
        conn.execute(
            select(owed_ticks.c.ordering_key, owed_ticks.c.tick_seq)
            .where(owed_ticks.c.partition == partition, ~earlier, ~parked.exists())
            .order_by(owed_ticks.c.tick_seq)
        )
    )


_HAS_WORK = Prepared(
    select(
        or_(
            _applicable_query().limit(1).exists(),
            select(parked_keys.c.ordering_key)
            .where(
                parked_keys.c.partition == bindparam("partition"),
                parked_keys.c.retry_at <= bindparam("now"),
            )
            .exists(),
            select(owed_ticks.c.ordering_key)
            .where(owed_ticks.c.partition == bindparam("partition"))
            .exists(),
        )
    )
)
_OWED = Prepared(
    select(owed_ticks.c.ordering_key, owed_ticks.c.tick_seq)
    .where(owed_ticks.c.partition == bindparam("partition"))
    .order_by(owed_ticks.c.tick_seq)
)
_PARKED_COLUMNS = (
    parked_keys.c.ordering_key,
    parked_keys.c.head_seq,
    parked_keys.c.reason,
    parked_keys.c.attempts,
    parked_keys.c.first_failed_at,
    parked_keys.c.retry_at,
)
"""A parked key and the fields of `_Parked`, in order."""
_PARKED = Prepared(
    select(*_PARKED_COLUMNS).where(parked_keys.c.partition == bindparam("partition"))
)


class _Batch:
    """One transaction of a drain."""

    def __init__(
        self,
        drainer: Drainer,
        conn: Connection,
        partition: int,
        *,
        known: dict[int, Envelope] | None = None,
        owed: dict[str, list[int]] | None = None,
        parked: dict[str, _Parked] | None = None,
        writes: _Writes | None = None,
    ) -> None:
        self.d = drainer
        self.conn = conn
        self.partition = partition
        self.known = known or {}
        """Events already parsed by the intake, by log number."""
        self.limit = drainer.batch_size
        self.now = drainer.clock()
        self.shared = writes is not None
        """The steps and done marks are the intake's, written once for all its partitions."""
        self.writes = writes if writes is not None else _Writes()
        self.steps = self.writes.steps
        self.handled: set[int] = set()
        # The partition's owed deadlines, read once: most batches have none, and every event
        # would otherwise ask.
        if owed is None:
            owed = {}
            for key, tick_seq in _OWED.rows(conn, {"partition": partition}):
                owed.setdefault(key, []).append(tick_seq)
        self.owed: dict[str, list[int]] = owed
        if parked is None:
            parked = {
                key: _Parked(*parked_row)
                for key, *parked_row in _PARKED.rows(conn, {"partition": partition})
            }
        self.parked: dict[str, _Parked] = parked

    def run(self, rows: list[_Pending] | None = None) -> Progress:
        """Apply the partition's pending events (`rows`: already read by the caller)."""
        try:
            self._retry_due_heads()
            self._fire_owed()
            full = False
            if rows is None:
                rows = _applicable(self.conn, self.partition, limit=self.limit)
                full = len(rows) == self.limit
            for row in rows:
                if row.ordering_key in self.parked or row.seq in self.handled:
                    continue  # parked earlier in this batch, or its head retried above
                self._fire_owed_before(row.ordering_key, row.seq)
                self._apply(row)
        except _Collision:
            self._write()
            return Progress.MORE  # the transaction commits what it did
        self._write()
        self._schedule_retries()
        return Progress.MORE if full else Progress.DRAINED

    def _retry_due_heads(self) -> None:
        due = sorted(
            (parked.head_seq, key)
            for key, parked in self.parked.items()
            if parked.retry_at <= self.now
        )
        for head_seq, key in due:
            found = _HEAD.first(self.conn, {"head_seq": head_seq})
            if found is None:
                raise RuntimeError(f"parked head {head_seq} is not in the event log")
            row = _Pending(*found)
            self._fire_owed_before(key, head_seq)
            self._apply(row, retrying=self.parked[key])

    def _apply(self, row: Any, retrying: _Parked | None = None) -> None:
        event = self.known.get(row.seq)
        if event is None:
            try:
                event = parse_event(row.body)
            except MalformedMessage as exc:
                # Only a body written by an older release that this one reads differently.
                self._dead(row, "malformed", list(exc.problems), retrying)
                return
        try:
            with savepoint(self.conn, "recourse_step"):
                result = apply_event(self.conn, event, self.d.policies, canonical=row.body)
        except UnknownSubject as exc:
            self._park_or_dead(row, "unknown_subject", str(exc), retrying)
            return
        except IdempotencyConflict as exc:
            self._dead(row, "idempotency_conflict", [("event_id", str(exc))], retrying)
            return
        except DBAPIError as exc:
            if is_contention(exc):
                log.info("event.contention", seq=row.seq, error=str(exc.orig)[:200])
                raise _Collision from exc
            if exc.connection_invalidated:
                raise
            self._park_or_dead(row, "handler_error", _error_text(exc), retrying)
            return
        except Exception as exc:  # a bug or a broken invariant: retried, then dead-lettered
            log.exception("event.handler_error", seq=row.seq, event_type=row.event_type)
            self._park_or_dead(row, "handler_error", _error_text(exc), retrying)
            return
        self._done(row, result, retrying)

    def _done(self, row: Any, result: ApplyResult, retrying: _Parked | None) -> None:
        self.steps.add(row.seq, "event")
        self.handled.add(row.seq)
        self.writes.finished.append(
            {"done_seq": row.seq, "done_result": result.status, "done_reason": result.reason}
        )
        if retrying is not None:
            self._unpark(row.ordering_key)
        if self.d.metrics is not None:
            self.d.metrics.record_result(result)
        log.info(
            "event.handled",
            seq=row.seq,
            event_type=row.event_type,
            status=result.status,
            reason=result.reason,
        )

    def _park_or_dead(self, row: Any, reason: str, error: str, retrying: _Parked | None) -> None:
        attempts = 1 if retrying is None else retrying.attempts + 1
        first_failed_at = self.now if retrying is None else retrying.first_failed_at
        if reason == "unknown_subject":
            spent = self.now - first_failed_at >= timedelta(
                seconds=self.d.budget.unknown_subject_seconds
            )
        else:
            spent = attempts > self.d.budget.error_max_retries
        if spent:
            self._dead(row, reason, [("event", error)], retrying)
            return
        retry_at = self.now + self.d.budget.backoff(attempts)
        if reason == "unknown_subject":
            # The last try comes when the budget ends, not a whole backoff after it.
            budget_end = first_failed_at + timedelta(seconds=self.d.budget.unknown_subject_seconds)
            retry_at = min(retry_at, budget_end)
        values = {
            "partition": self.partition,
            "head_seq": row.seq,
            "reason": reason,
            "attempts": attempts,
            "first_failed_at": first_failed_at,
            "retry_at": retry_at,
            "last_error": error[:2000],
            "contract_id": _contract_key(row),
        }
        if retrying is None:
            self.conn.execute(parked_keys.insert().values(ordering_key=row.ordering_key, **values))
        else:
            self.conn.execute(
                update(parked_keys)
                .where(parked_keys.c.ordering_key == row.ordering_key)
                .values(**values)
            )
        if self.d.metrics is not None:
            self.d.metrics.record_failure("refunds.events", row.event_type, "retry", reason)
        self.parked[row.ordering_key] = _Parked(
            row.seq, reason, attempts, first_failed_at, retry_at
        )
        log.info(
            "event.parked",
            seq=row.seq,
            event_type=row.event_type,
            reason=reason,
            attempts=attempts,
            retry_at=retry_at.isoformat(),
        )

    def _dead(
        self, row: Any, reason: str, problems: list[tuple[str, str]], retrying: _Parked | None
    ) -> None:
        self.conn.execute(
            update(event_log).where(event_log.c.seq == row.seq).values(status="dead", reason=reason)
        )
        self.handled.add(row.seq)
        event_id, event_type = _ids_of(row.body)
        self.conn.execute(
            dead_letters.insert().values(
                dead_letter_row(
                    reason=reason,
                    problems=problems,
                    body=row.body,
                    event_id=event_id,
                    event_type=event_type or row.event_type,
                    routing_key=row.ordering_key,
                    producer=row.producer,
                    received_at=row.received_at,
                    dead_at=self.now,
                    log_seq=row.seq,
                )
            )
        )
        if retrying is not None:
            self._unpark(row.ordering_key)
        if self.d.metrics is not None:
            self.d.metrics.record_failure("refunds.events", row.event_type, "dead_letter", reason)
        log.warning("event.dead_lettered", seq=row.seq, event_type=row.event_type, reason=reason)

    def _unpark(self, key: str) -> None:
        self.conn.execute(delete(parked_keys).where(parked_keys.c.ordering_key == key))
        self.parked.pop(key, None)

    def _fire_owed(self) -> None:
        if not self.owed:
            return
        for key, tick_seq in _owed_ready(self.conn, self.partition):
            self._fire_owed_tick(key, tick_seq)
            if tick_seq in self.owed.get(key, []):
                self.owed[key].remove(tick_seq)

    def _fire_owed_before(self, key: str, seq: int) -> None:
        """Deadlines owed to `key` by ticks before its event at `seq` fire before it does."""
        waiting = self.owed.get(key)
        if not waiting:
            return
        while waiting and waiting[0] < seq:
            self._fire_owed_tick(key, waiting.pop(0))

    def _write(self) -> None:
        if not self.shared:
            self.writes.write(self.conn)

    def _fire_owed_tick(self, key: str, tick_seq: int) -> None:
        fire_key_deadlines(self.conn, self.d.policies, key, tick_seq, self.steps)
        self.conn.execute(
            delete(owed_ticks).where(
                and_(owed_ticks.c.ordering_key == key, owed_ticks.c.tick_seq == tick_seq)
            )
        )

    def _schedule_retries(self) -> None:
        if not self.parked:
            return
        soonest = min(parked.retry_at for parked in self.parked.values())
        self.d.retry_later(self.partition, max((soonest - self.now).total_seconds(), 0.0))


@dataclass
class _Inline:
    """What the intake's transaction did of its batch, over its rounds between ticks."""

    handled: set[int] = field(default_factory=set)
    parked: set[str] = field(default_factory=set)
    more: set[int] = field(default_factory=set)
    """Partitions that may hold more than the intake read."""
    examined: int = 0


class _Writes:
    """Steps and done marks, written together when a batch (or the intake's transaction) ends:
    two statements for all of it."""

    def __init__(self) -> None:
        self.steps = Steps()
        self.finished: list[dict[str, object]] = []

    def write(self, conn: Connection) -> None:
        self.steps.write(conn)
        if self.finished:
            conn.execute(_MARK_DONE, self.finished)
            self.finished = []


def _lock_partitions(conn: Connection, partitions: list[int]) -> list[int]:
    """The partitions of `partitions` this transaction could take (in one statement on
    PostgreSQL; see `_lock_partition`)."""
    if conn.dialect.name != "postgresql" or not partitions:
        return partitions
    locked: Any = conn.execute(
        text(
            "SELECT p FROM unnest(CAST(:partitions AS integer[])) AS p"
            " WHERE set_config('lock_timeout', :timeout, true) IS NOT NULL"
            " AND pg_try_advisory_xact_lock(:class_id, p) ORDER BY p"
        ),
        {"partitions": partitions, "timeout": LOCK_TIMEOUT, "class_id": PARTITION_LOCK_CLASS},
    ).scalars()
    return list(locked)


def _owed_of(conn: Connection, partitions: list[int]) -> dict[int, dict[str, list[int]]]:
    found: dict[int, dict[str, list[int]]] = {}
    rows: list[Any] = list(
        conn.execute(
            select(owed_ticks.c.ordering_key, owed_ticks.c.tick_seq, owed_ticks.c.partition)
            .where(owed_ticks.c.partition.in_(partitions))
            .order_by(owed_ticks.c.tick_seq)
        )
    )
    for key, tick_seq, partition in rows:
        found.setdefault(partition, {}).setdefault(key, []).append(tick_seq)
    return found


def _parked_of(conn: Connection, partitions: list[int]) -> dict[int, dict[str, _Parked]]:
    found: dict[int, dict[str, _Parked]] = {}
    rows: list[Any] = list(
        conn.execute(
            select(parked_keys.c.partition, *_PARKED_COLUMNS).where(
                parked_keys.c.partition.in_(partitions)
            )
        )
    )
    for row in rows:
        partition, key, head_seq, reason, attempts, first_failed_at, retry_at = row
        found.setdefault(partition, {})[key] = _Parked(
            head_seq, reason, attempts, first_failed_at, retry_at
        )
    return found


def _applicable_of(conn: Connection, partitions: list[int], *, limit: int) -> list[_Pending]:
    """`_applicable` for several partitions at once, the first `limit` in log order."""
    statement = _applicable_query(event_log.c.partition.in_(partitions)).limit(limit)
    return [_Pending._make(row) for row in conn.execute(statement)]


_MARK_DONE = (
    update(event_log)
    .where(event_log.c.seq == bindparam("done_seq"))
    .values(status="done", result=bindparam("done_result"), reason=bindparam("done_reason"))
)


def fire_key_deadlines(
    conn: Connection, policies: PolicySet, contract_id: str, tick_seq: int, steps: Steps
) -> None:
    """Fire the deadlines of one contract that the tick at `tick_seq` left to it, as a step."""
    tick_row = select(event_log.c.body).where(event_log.c.seq == tick_seq)
    tick = parse_event(conn.execute(tick_row).scalar_one())
    assert isinstance(tick, DeadlineTickEvent)
    fire_contract_deadlines(conn, policies, contract_id, tick)
    steps.add(tick_seq, "key_deadlines", [contract_id])


def fire_contract_deadlines(
    conn: Connection, policies: PolicySet, contract_id: str, tick: DeadlineTickEvent
) -> None:
    """Fire one contract's deadlines due at the tick's time (the tick itself was applied
    before, without them)."""
    context = HandlerContext(
        conn,
        policies,
        cause_id=tick.event_id,
        event_id=tick.event_id,
        event_type=tick.type,
        occurred_at=tick.occurred_at,
    )
    context.deadline_scope = DeadlineScope(only=contract_id)
    fire_deadlines(context, tick)


def _contract_key(row: Any) -> str | None:
    """The key itself when it is a contract id (its type's key field is `contract_id`)."""
    return row.ordering_key if row.event_type not in KEY_FIELD_BY_TYPE else None


def _ids_of(body: str) -> tuple[str | None, str | None]:
    try:
        event = parse_event(body)
    except MalformedMessage:
        return None, None
    return event.event_id, event.type


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
