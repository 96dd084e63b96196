"""The engine's own Dramatiq actors: nudges that make a worker thread drain a partition or
fire the ticks that are ready.

No producer writes these messages: the intake sends them after it commits a batch, the drains
send them to come back to a parked key, and each worker's sweeper sends them again for
whatever work it finds waiting, so a nudge lost in a crash costs a moment, never an event. An
actor does not raise: a failed drain is logged and the sweeper's next nudge tries again, so no
nudge ever waits in a retry or dead-letter queue. The actors are declared on a broker passed
in, not on Dramatiq's global one, so a process (or a test) can hold several runtimes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import dramatiq
import structlog
from dramatiq import Broker

from workers.intake.barrier import Barrier
from workers.intake.drain import TICKS_PARTITION, Drainer, Progress

log = structlog.get_logger(__name__)

APPLY_QUEUE = "recourse.apply"
"""The engine-internal queue of nudges (not part of the contract)."""


@dataclass(frozen=True, slots=True)
class Actors:
    drain: dramatiq.Actor[[int], None]
    fire_ticks: dramatiq.Actor[[], None]


def declare_actors(broker: Broker, drainer: Drainer, barrier: Barrier) -> Actors:
    def drain_partition(partition: int) -> None:
        try:
            if drainer.drain(partition) is Progress.DRAINED:
                barrier.fire_ready()
        except Exception:
            log.exception("drain.failed", partition=partition)

    def fire_ready_ticks() -> None:
        try:
            barrier.fire_ready()
        except Exception:
            log.exception("ticks.failed")

    return Actors(
        drain=dramatiq.actor(broker=broker, actor_name="drain_partition", queue_name=APPLY_QUEUE)(
            drain_partition
        ),
        fire_ticks=dramatiq.actor(
            broker=broker, actor_name="fire_ready_ticks", queue_name=APPLY_QUEUE
        )(fire_ready_ticks),
    )


class Nudger:
    """Sends the nudges; bound to the actors once they are declared."""

    def __init__(self) -> None:
        self.actors: Actors | None = None
        self._retries: dict[int, float] = {}
        self._lock = threading.Lock()

    def nudge(self, partitions: Iterable[int]) -> None:
        actors = self._bound()
        for partition in sorted(set(partitions)):
            if partition == TICKS_PARTITION:
                actors.fire_ticks.send()
            else:
                actors.drain.send(partition)

    def retry_later(self, partition: int, delay_s: float) -> None:
        """One delayed nudge per partition at a time: the soonest asked for."""
        due = time.monotonic() + delay_s
        with self._lock:
            scheduled = self._retries.get(partition)
            if scheduled is not None and time.monotonic() < scheduled <= due:
                return
            self._retries[partition] = due
        self._bound().drain.send_with_options(args=(partition,), delay=int(delay_s * 1000) + 1)

    def _bound(self) -> Actors:
        if self.actors is None:
            raise RuntimeError("the nudger is used before the actors are declared")
        return self.actors
