"""The load driver: publishes a generated load to RabbitMQ as upstream services would, with
every event twice and some of a contract's events out of order, and waits on the database to
know what the engine has applied.

Phase by phase (see `tests.e2e.story_generator`): each story sends its next event once the
one before it is in the inbox, so hundreds of stories are in flight at once while each keeps
its own order; the phase's tick goes out once every story event of the phase is applied. Out
of order means a pair whose second event needs the first's subject is sent second first: the
engine must hold it (UnknownSubject, retried) until the first lands. A copy of every event is
published too, either right behind it or some phases later.

Publishing goes on through broker outages: a publish the broker did not confirm is sent again
until it is, which may leave a third copy behind, as a real upstream would.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from messages.errors import PublishError
from messages.publisher import EventPublisher
from policy.tables import inbox
from tests.e2e.faults.poison import Poison
from tests.e2e.story_generator import Load, Phase, StoryEvent

POLL_S = 0.02
STALL_S = 240.0
"""How long the load may make no progress at all before the run fails."""
PUBLISH_GIVE_UP_S = 180.0


class LoadStalled(AssertionError):
    """Nothing the driver waits for was applied for STALL_S."""


@dataclass
class DriverStats:
    messages: int = 0
    """Every message published: originals, copies, resends and poison."""
    copies: int = 0
    resends: int = 0
    reordered: int = 0
    poison: int = 0
    reorder_waits_s: list[float] = field(default_factory=list)
    """For each pair sent out of order, from its publication until both were applied."""
    elapsed_s: float = 0.0


class InFlight:
    """Events published and not yet seen in the inbox; shared with the fault runner."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: set[str] = set()

    def add(self, event_id: str) -> None:
        with self._lock:
            self._events.add(event_id)

    def discard(self, event_ids: Iterable[str]) -> None:
        with self._lock:
            self._events.difference_update(event_ids)

    def snapshot(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._events)


def applied_among(engine: Engine, event_ids: Iterable[str]) -> set[str]:
    """Which of `event_ids` the inbox holds (applied, rejected: handled either way)."""
    wanted = list(event_ids)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        with engine.connect() as conn:
            found.update(
                conn.execute(
                    select(inbox.c.event_id).where(
                        inbox.c.event_id.in_(wanted[start : start + 500])
                    )
                ).scalars()
            )
    return found


@dataclass
class Driver:
    load: Load
    broker_url: str
    engine: Engine
    seed: int
    poison: list[Poison]
    on_progress: Callable[[float], None] = lambda _fraction: None
    reorder_rate: float = 0.3
    late_copy_rate: float = 0.4
    stats: DriverStats = field(default_factory=DriverStats)
    in_flight: InFlight = field(default_factory=InFlight)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed * 7919 + 1)
        self._publisher = EventPublisher(self.broker_url, max_attempts=3, max_backoff_s=1.0)
        self._sent_story_events = 0
        self._total = max(1, self.load.story_events)
        self._late: dict[int, list[dict[str, Any]]] = {}
        self._poison_left = deque(self.poison)

    @property
    def progress(self) -> float:
        return self._sent_story_events / self._total

    def run(self) -> DriverStats:
        began = time.monotonic()
        try:
            phases = self.load.phases()
            for index, phase in enumerate(phases):
                self._run_phase(index, phase)
            for copies in self._late.values():
                for envelope in copies:
                    self._publish(envelope, copy=True)
            self._late.clear()
            while self._poison_left:
                self._send_poison()
        finally:
            self._publisher.close()
        self.stats.elapsed_s = time.monotonic() - began
        return self.stats

    def _run_phase(self, index: int, phase: Phase) -> None:
        queues = [deque(part) for part in phase.slices]
        waiting: dict[int, set[str]] = {}
        pairs: dict[frozenset[str], float] = {}
        last_progress = time.monotonic()
        while waiting or any(queues):
            for story, queue in enumerate(queues):
                if story not in waiting and queue:
                    sent = self._next_of(queue, index)
                    waiting[story] = set(sent)
                    if len(sent) == 2:
                        pairs[frozenset(sent)] = time.monotonic()
            done = self._applied({event_id for ids in waiting.values() for event_id in ids})
            if done:
                last_progress = time.monotonic()
                self.in_flight.discard(done)
                for story in list(waiting):
                    waiting[story] -= done
                    if not waiting[story]:
                        del waiting[story]
                left = self.in_flight.snapshot()
                for both, since in list(pairs.items()):
                    if not both & left:
                        self.stats.reorder_waits_s.append(time.monotonic() - since)
                        del pairs[both]
            self._between_publishes()
            if time.monotonic() - last_progress > STALL_S:
                stuck = sorted(event_id for ids in waiting.values() for event_id in ids)
                raise LoadStalled(f"phase {index}: nothing applied for {STALL_S}s: {stuck[:10]}")
            time.sleep(POLL_S)
        self._send_and_wait(phase.tick, index)
        for envelope in self._late.pop(index, []):
            self._publish(envelope, copy=True)

    def _applied(self, event_ids: set[str]) -> set[str]:
        if not event_ids:
            return set()
        try:
            return applied_among(self.engine, event_ids)
        except DBAPIError:
            # The driver's own connection is not a target, but a busy server may still drop
            # it; the next poll asks again.
            return set()

    def _next_of(self, queue: deque[StoryEvent], phase: int) -> list[str]:
        """Publish the story's next event, or its next two out of order; returns their ids."""
        first = queue.popleft()
        batch = [first]
        if queue and queue[0].needs == first.event_id and self._rng.random() < self.reorder_rate:
            batch = [queue.popleft(), first]
            self.stats.reordered += 1
        for event in batch:
            self.in_flight.add(event.event_id)
            self._publish(event.envelope)
            self._copy_later_or_now(event.envelope, phase)
            self._sent_story_events += 1
        return [event.event_id for event in batch]

    def _copy_later_or_now(self, envelope: dict[str, Any], phase: int) -> None:
        if self._rng.random() < self.late_copy_rate:
            self._late.setdefault(phase + self._rng.randint(0, 3), []).append(envelope)
        else:
            self._publish(envelope, copy=True)

    def _send_and_wait(self, tick: StoryEvent, phase: int) -> None:
        self.in_flight.add(tick.event_id)
        self._publish(tick.envelope)
        self._copy_later_or_now(tick.envelope, phase)
        began = time.monotonic()
        while not self._applied({tick.event_id}):
            self._between_publishes()
            if time.monotonic() - began > STALL_S:
                raise LoadStalled(f"tick {tick.event_id} not applied after {STALL_S}s")
            time.sleep(POLL_S)
        self.in_flight.discard([tick.event_id])

    def _between_publishes(self) -> None:
        self.on_progress(self.progress)
        due = len(self.poison) - len(self._poison_left)
        if self._poison_left and self.progress >= (due + 1) / (len(self.poison) + 1):
            self._send_poison()

    def _send_poison(self) -> None:
        poison = self._poison_left.popleft()
        self._retrying(lambda: self._publisher.publish_raw(poison.body, queue=poison.queue))
        self.stats.poison += 1
        self.stats.messages += 1

    def _publish(self, envelope: dict[str, Any], *, copy: bool = False) -> None:
        self._retrying(lambda: self._publisher.publish(envelope))
        self.stats.messages += 1
        if copy:
            self.stats.copies += 1

    def _retrying(self, send: Callable[[], object]) -> None:
        """Send until the broker confirms; a broker outage only delays the load."""
        began = time.monotonic()
        while True:
            try:
                send()
                return
            except PublishError:
                if time.monotonic() - began > PUBLISH_GIVE_UP_S:
                    raise
                self.stats.resends += 1
                self.stats.messages += 1
                time.sleep(0.5)
