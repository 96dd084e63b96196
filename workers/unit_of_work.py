"""One event, one transaction: the inbox row, the state, the ledger, the deadlines and the
outbox rows of an event commit together or not at all.

`engine.begin()` is the unit of work: it commits when the block ends normally and rolls back
on any exception, so a handler that raises (an unknown subject, a ledger guard) leaves no trace.
A racing duplicate of the same event waits on the other's inbox row and then finds it (the
insert skips an existing key). Two transactions that collide (a deadlock between two contracts'
hot rows, a serialization failure) are tried again here at once: the next attempt sees the
other's commit. Only when that keeps failing does the error reach the worker's failure policy.

A pooled connection whose server session ended (a database restart, a terminated backend)
fails on its first statement and is invalidated, and the event is tried again at once on
another connection: cheaper than the pool checking every connection before lending it
(`pool_pre_ping`, one more round trip on every event) for what happens once per restart. A
restart leaves every pooled connection stale, so this goes on for up to as many connections as
the pool holds. A server that does not answer fails to connect instead, and that error reaches
the failure policy as an outage. What the lost session did rolled back with it, unless its
COMMIT got through; the next attempt then stops at the inbox as a duplicate.

On PostgreSQL the writes whose answer nobody reads travel with the next statement that needs
one (`store.pipelining`), so an event waits on the server less often (a tenth to a fifth less
wall time an event, docs/performance.md). A failed write raises at that later statement or at
the end of the block, and rolls the whole event back, as it would have where it was written.

On SQLite (the embedded mode) every transaction begins IMMEDIATE (`workers.database`), so the
worker threads' writers queue on the file's lock instead of failing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from messages import parse_event
from messages.inbound import Envelope
from policy.apply import ApplyResult, apply_event
from policy.config import PolicySet
from store.pipelining import deferred_writes
from workers.database import POOL_CAPACITY
from workers.errors import is_contention
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)

CONTENTION_ATTEMPTS = 3
CONTENTION_PAUSE_S = 0.02


class EventProcessor:
    """Validate an envelope and apply it in its own transaction; what the actors call."""

    def __init__(
        self,
        engine: Engine,
        policies: PolicySet,
        *,
        metrics: EngineMetrics | None = None,
        attempts: int = CONTENTION_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.policies = policies
        self.metrics = metrics
        self._attempts = attempts
        self._sleep = sleep

    def __call__(self, envelope: object) -> ApplyResult:
        """Apply `envelope` (a decoded JSON object, or its text).

        Raises `MalformedMessage` before touching the database; `IdempotencyConflict`,
        `UnknownSubject` and database errors after rolling back.
        """
        event = parse_event(envelope)
        result = self.apply(event)
        if self.metrics is not None:
            self.metrics.record_result(result)
        log.info("event.handled", status=result.status, reason=result.reason)
        return result

    def apply(self, event: Envelope) -> ApplyResult:
        attempt = 1
        lost_connections = 0
        while True:
            try:
                with self.engine.begin() as conn, deferred_writes(conn):
                    return apply_event(conn, event, self.policies)
            except DBAPIError as exc:
                if exc.connection_invalidated and lost_connections < POOL_CAPACITY:
                    lost_connections += 1
                    log.info("event.connection_lost", lost=lost_connections, error=str(exc.orig))
                    continue
                if not is_contention(exc) or attempt >= self._attempts:
                    raise
                log.info("event.contention", attempt=attempt, error=str(exc.orig))
                self._sleep(CONTENTION_PAUSE_S * attempt * (1 + random.random()))
                attempt += 1
