"""The scheduler: publish a `deadline.tick` every TICK_INTERVAL_SECONDS, from one instance.

Only the instance holding a PostgreSQL session-level advisory lock publishes. The lock lives on
a dedicated connection that stays open: when that process dies, its connection drops and the
server releases the lock, and a waiting instance, which polls `pg_try_advisory_lock`, takes
over. An instance whose lock connection fails stops publishing at once and goes back to waiting.

A tick's time is the clock's time rounded down to the interval, and its id is derived from it
(`tick:2026-03-02T10:01:00Z`): two instances that overlap for a moment publish the same id with
the same body, which the inbox drops as a duplicate (a different `occurred_at` under the same
id would be an idempotency conflict). Embedded mode (SQLite) has one process: `LocalLock`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from messages.transport import TICK_TYPE
from scheduler.clock import Clock, SystemClock
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)

SCHEDULER_LOCK_KEY = 0x7265636F75727365
"""The advisory lock's key: "recourse" in ASCII, as a bigint."""

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_POLL_SECONDS = 5.0

Publish = Callable[[dict[str, Any]], object]


class LeaderLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this instance holds it."""

    def still_held(self) -> bool:
        """False once the lock was lost (its connection failed)."""

    def release(self) -> None: ...


class AdvisoryLock:
    """`pg_try_advisory_lock` on a connection of its own, held for the process's life."""

    def __init__(self, engine: Engine, key: int = SCHEDULER_LOCK_KEY) -> None:
        self._engine = engine
        self._key = key
        self._conn: Connection | None = None
        self._held = False

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock's connection (what an operator would terminate)."""
        if self._conn is None:
            return None
        pid: int = self._conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        return pid

    def try_acquire(self) -> bool:
        if self._held:
            return self.still_held()
        try:
            if self._conn is None:
                # Autocommit: a session lock outlives transactions, and an idle connection
                # must not sit "idle in transaction".
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got: bool = self._conn.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
            ).scalar_one()
        except DBAPIError:
            self._discard()
            raise
        self._held = bool(got)
        return self._held

    def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
        except DBAPIError:
            log.warning("scheduler.lock_connection_lost")
            self._discard()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None and self._held:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            except DBAPIError:
                log.debug("scheduler.unlock_failed", exc_info=True)
        self._discard()

    def _discard(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is None:
            return
        try:
            # Invalidate, not return to the pool: a pooled connection would keep a session
            # lock that was never unlocked, and hand it to whoever borrows it next.
            conn.invalidate()
            conn.close()
        except Exception:
            log.debug("scheduler.close_failed", exc_info=True)


class LocalLock:
    """The embedded mode's lock: one process, always the leader."""

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def leader_lock(engine: Engine) -> LeaderLock:
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine)
    return LocalLock()


def tick_time(now: datetime, interval_seconds: float) -> datetime:
    """`now` rounded down to a multiple of the interval since the epoch, in UTC."""
    step = timedelta(seconds=interval_seconds)
    return EPOCH + ((now.astimezone(UTC) - EPOCH) // step) * step


def tick_envelope(at: datetime) -> dict[str, Any]:
    stamp = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "event_id": f"tick:{stamp}",
        "type": TICK_TYPE,
        "occurred_at": stamp,
        "schema_version": 1,
        "data": {},
    }


class TickPublisher:
    def __init__(
        self,
        lock: LeaderLock,
        publish: Publish,
        *,
        clock: Clock | None = None,
        interval_seconds: float = 60.0,
        lateness_seconds: float = 0.0,
        poll_seconds: float | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        self.lock = lock
        self._publish = publish
        self._clock = clock or SystemClock()
        self.interval_seconds = interval_seconds
        self.lateness = timedelta(seconds=lateness_seconds)
        self.poll_seconds = poll_seconds or min(interval_seconds, MAX_POLL_SECONDS)
        self._metrics = metrics
        self.leading = False
        self.last_tick: datetime | None = None

    def step(self) -> dict[str, Any] | None:
        """Check the lock, and publish the current tick if leading and not yet published."""
        if not self._lead():
            return None
        at = tick_time(self._clock.now(), self.interval_seconds)
        if self.last_tick is not None and at <= self.last_tick:
            return None
        # The tick fires what was due `lateness` ago: an event stamped before a deadline may
        # still be on its way (MESSAGES.md, "Ticks are the engine's own").
        envelope = tick_envelope(at - self.lateness)
        self._publish(envelope)
        self.last_tick = at
        if self._metrics is not None:
            self._metrics.ticks.inc()
        log.debug("scheduler.tick", event_id=envelope["event_id"])
        return envelope

    def run(self, stop: threading.Event) -> None:
        log.info("scheduler.started", interval_s=self.interval_seconds)
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:
                    # The broker or the database is away: keep the lock if we can, try again.
                    log.exception("scheduler.tick_failed")
                stop.wait(self._pause())
        finally:
            self.lock.release()
            self._set_leading(False)
            log.info("scheduler.stopped")

    def _lead(self) -> bool:
        held = self.lock.still_held() if self.leading else self.lock.try_acquire()
        if held != self.leading:
            self._set_leading(held)
            log.info("scheduler.leading" if held else "scheduler.lock_lost")
        return held

    def _set_leading(self, leading: bool) -> None:
        self.leading = leading
        if self._metrics is not None:
            self._metrics.scheduler_leader.set(1 if leading else 0)

    def _pause(self) -> float:
        if not self.leading or self.last_tick is None:
            return self.poll_seconds
        next_tick = self.last_tick + timedelta(seconds=self.interval_seconds)
        until = (next_tick - self._clock.now()).total_seconds()
        return min(max(until, 0.01), self.poll_seconds)
