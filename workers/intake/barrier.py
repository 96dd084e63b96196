"""Ticks as barriers (MESSAGES.md, Ordering 2): a tick fires once every event the broker
received before it has been applied or dead-lettered.

An event parked waiting for its subject (up to `UNKNOWN_SUBJECT_RETRY_SECONDS`) would hold every
tick, and so every event after it, for that long. Instead the tick fires without the deadlines
of the parked key's contract and leaves them to that key (`owed_ticks`): they fire once the
key's events before the tick are applied or dead-lettered, and before any of its events after
the tick. So a deadline never fires before an event of its own contract that came before the
tick, and the wait of one key holds back nothing else.

One thread at a time fires ticks (an advisory lock on PostgreSQL); one that finds the lock taken
leaves, and the holder looks again after it lets go.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Row,
    and_,
    exists,
    func,
    insert,
    select,
    text,
    update,
)

from messages import parse_event
from policy.apply import apply_event
from policy.config import PolicySet
from policy.context import DeadlineScope
from store.pipelining import deferred_writes
from workers.intake.partitions import partition_of
from workers.intake.steps import record_step
from workers.intake.tables import event_log, owed_ticks, parked_keys
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)

TICK_LOCK = 0x5245_0002
"""The advisory lock id of tick firing (PostgreSQL)."""


class TickProgress(Enum):
    FIRED = "fired"
    WAITING = "waiting"  # events before the oldest tick are still to be applied
    NONE = "none"  # no tick waits
    BUSY = "busy"  # another thread fires ticks


class Barrier:
    def __init__(
        self,
        engine: Engine,
        policies: PolicySet,
        *,
        on_fired: Callable[[], None],
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.on_fired = on_fired
        """Called after a tick fired: the partitions that stopped at it may go on."""
        self.metrics = metrics

    def fire_ready(self) -> None:
        """Fire every tick whose events before it are done, oldest first; look once more
        after letting go of the lock."""
        if not self.ready():
            # The common case after a drain: no tick waits, or its events are not all done.
            return
        fired_any = False
        while True:
            progress = self.fire_one()
            if progress is TickProgress.FIRED:
                fired_any = True
                continue
            if progress is TickProgress.BUSY or not self.ready():
                break
        if fired_any:
            self.on_fired()

    def fire_one(self) -> TickProgress:
        with self.engine.begin() as conn, deferred_writes(conn):
            return self.fire_oldest(conn)

    def fire_in(self, conn: Connection) -> bool:
        """Fire the oldest tick inside the caller's transaction (the intake's, which applied
        the events before it): whether it fired."""
        return self.fire_oldest(conn) is TickProgress.FIRED

    def fire_oldest(self, conn: Connection) -> TickProgress:
        """Fire the oldest unfired tick on `conn` if every event before it is done; the tick
        lock is held until the transaction ends."""
        if not _lock(conn):
            return TickProgress.BUSY
        tick = _oldest_tick(conn)
        if tick is None:
            return TickProgress.NONE
        if _events_before(conn, tick.seq):
            return TickProgress.WAITING
        left_to_keys = _parked_contracts(conn, tick.seq)
        event = parse_event(tick.body)
        scope = DeadlineScope(skip=frozenset(left_to_keys.values()))
        result = apply_event(conn, event, self.policies, deadline_scope=scope)
        record_step(conn, tick.seq, "tick", left_to_keys.values())
        for key in left_to_keys:
            conn.execute(
                insert(owed_ticks).values(
                    ordering_key=key,
                    tick_seq=tick.seq,
                    partition=partition_of(key),
                    fire_at=event.occurred_at,
                )
            )
        conn.execute(
            update(event_log)
            .where(event_log.c.seq == tick.seq)
            .values(status="done", result=result.status)
        )
        if self.metrics is not None:
            self.metrics.record_result(result)
        log.info(
            "tick.fired",
            seq=tick.seq,
            tick_at=event.occurred_at.isoformat(),
            left_to_parked_keys=len(left_to_keys),
        )
        return TickProgress.FIRED

    def ready(self) -> bool:
        """Whether the oldest waiting tick may fire now (one statement: every drain asks)."""
        oldest = (
            select(func.min(event_log.c.seq))
            .where(event_log.c.status == "pending", event_log.c.kind == "tick")
            .scalar_subquery()
        )
        before = (
            select(event_log.c.seq)
            .where(
                event_log.c.status == "pending",
                event_log.c.kind == "event",
                event_log.c.seq < oldest,
                ~exists().where(parked_keys.c.ordering_key == event_log.c.ordering_key),
            )
            .exists()
        )
        with self.engine.connect() as conn:
            found: bool = conn.execute(select(and_(oldest.is_not(None), ~before))).scalar_one()
        return found


def _lock(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return True
    locked: bool = conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": TICK_LOCK}
    ).scalar_one()
    return locked


def _oldest_tick(conn: Connection) -> Row[tuple[int, str]] | None:
    return conn.execute(
        select(event_log.c.seq, event_log.c.body)
        .where(event_log.c.status == "pending", event_log.c.kind == "tick")
        .order_by(event_log.c.seq)
        .limit(1)
    ).first()


def _events_before(conn: Connection, tick_seq: int) -> bool:
    """Whether an event before the tick is still to be applied (parked keys' events aside)."""
    found = conn.execute(
        select(event_log.c.seq)
        .where(
            event_log.c.status == "pending",
            event_log.c.kind == "event",
            event_log.c.seq < tick_seq,
            ~exists().where(parked_keys.c.ordering_key == event_log.c.ordering_key),
        )
        .limit(1)
    ).first()
    return found is not None


def _parked_contracts(conn: Connection, tick_seq: int) -> dict[str, str]:
    """Parked contract keys with an event before the tick: key -> contract id."""
    return {
        str(key): str(contract_id)
        for key, contract_id in conn.execute(
            select(parked_keys.c.ordering_key, parked_keys.c.contract_id).where(
                parked_keys.c.head_seq < tick_seq, parked_keys.c.contract_id.is_not(None)
            )
        )
    }
