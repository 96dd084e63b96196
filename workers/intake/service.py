"""The intake's entry: judge a batch of arrivals, append it, then nudge what it touched.

The AMQP consumer (`consumer`) calls `receive` with what the broker delivered and acks only after
it returns; the embedded mode calls `submit` for each envelope. Either way the same judge, the
same log and the same drains run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from messages import Envelope, MalformedMessage, parse_event
from messages.ordering import ordering_key
from workers.errors import is_contention, is_outage
from workers.intake.judge import Refused, judge
from workers.intake.log import Arrival, append
from workers.intake.producers import Producers
from workers.metrics import EngineMetrics

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the intake reads of a broker message, and nothing else (MESSAGES.md, Transport)."""

    body: bytes
    routing_key: str | None
    user_id: str | None


ApplyArrived = Callable[[Connection, set[int], dict[int, Envelope]], set[int]]


class Intake:
    def __init__(
        self,
        engine: Engine,
        producers: Producers,
        *,
        nudge: Callable[[set[int]], None],
        apply_arrived: ApplyArrived | None = None,
        metrics: EngineMetrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.producers = producers
        self.nudge = nudge
        """Called after the commit with the partitions left to the drains (-1: a tick came)."""
        self.apply_arrived = apply_arrived
        """Applies what it can of a batch in the transaction that appends it, and returns the
        partitions it leaves to the drains (`Drainer.apply_arrived`); None: the drains apply
        everything."""
        self.metrics = metrics
        self.clock = clock

    def receive(self, deliveries: Sequence[Delivery]) -> None:
        arrivals = [self._judged(delivery) for delivery in deliveries]
        try:
            touched = self._append(arrivals, apply=True)
        except DBAPIError as exc:
            if is_outage(exc) or is_contention(exc):
                raise
            # The database refused something a message carried: one by one, so that the one
            # it refuses is dead-lettered and cannot stall the queue behind it.
            log.warning("intake.batch_refused", error=type(exc.orig).__name__)
            touched = set()
            for arrival in arrivals:
                touched |= self._append_alone(arrival)
        except Exception:
            if self.apply_arrived is None:
                raise
            # Applying on intake failed outside any one event (a bug): the batch is appended
            # alone and left to the drains, which isolate each event, so the queue goes on.
            log.exception("intake.apply_failed")
            touched = self._append(arrivals, apply=False)
        for arrival in arrivals:
            verdict = arrival.verdict
            if isinstance(verdict, Refused):
                # The field names only: a body's free text never goes to the log.
                log.warning(
                    "intake.refused",
                    reason=verdict.reason,
                    fields=[field for field, _ in verdict.problems][:10],
                )
                if self.metrics is not None:
                    self.metrics.record_failure(
                        "refunds.events",
                        verdict.event.type if verdict.event else "unknown",
                        "dead_letter",
                        verdict.reason,
                    )
        if touched:
            try:
                self.nudge(touched)
            except Exception as exc:
                # The batch is stored: failing here would append it again. The sweeper finds
                # the partitions within SWEEP_SECONDS.
                log.warning("intake.nudge_failed", error=repr(exc)[:300])

    def _append(self, arrivals: list[Arrival], *, apply: bool) -> set[int]:
        with self.engine.begin() as conn:
            appended = append(conn, arrivals, now=self.clock())
            touched = appended.touched
            if apply and self.apply_arrived is not None and touched:
                touched = self.apply_arrived(conn, touched, appended.events)
        return touched

    def _append_alone(self, arrival: Arrival) -> set[int]:
        try:
            with self.engine.begin() as conn:
                return append(conn, [arrival], now=self.clock()).touched
        except DBAPIError as exc:
            if is_outage(exc) or is_contention(exc):
                raise
        refused = Refused("malformed", [("body", "could not be stored by the database")])
        with self.engine.begin() as conn:
            append(conn, [replace(arrival, verdict=refused)], now=self.clock())
        return set()

    def submit(self, body: bytes | str, *, user_id: str | None = None) -> None:
        """Take one envelope in-process (embedded mode, `recourse run`, the console, tests), as
        the broker would deliver it under its own ordering key, from `user_id` (default: the
        engine's own user)."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        try:
            routing_key: str | None = ordering_key(parse_event(raw))
        except MalformedMessage:
            routing_key = None  # the judge says why
        producer = user_id if user_id is not None else self.producers.engine_user
        self.receive([Delivery(raw, routing_key, producer)])

    def _judged(self, delivery: Delivery) -> Arrival:
        try:
            verdict = judge(
                delivery.body,
                user_id=delivery.user_id,
                routing_key=delivery.routing_key,
                producers=self.producers,
            )
        except Exception as exc:  # a reader's failure must not stall the queue behind it
            verdict = Refused("malformed", [("body", f"could not be read ({type(exc).__name__})")])
        return Arrival(verdict, delivery.body, delivery.routing_key, delivery.user_id)
