"""The load driver: publishes a generated load (`testbed.stories`) to the
`refunds.events` exchange as upstream services would (MESSAGES.md, "Transport" and
"Ordering"), and records the order the broker confirmed the originals in: the order the
oracle replays.

- Four publishers at once, each an `EventPublisher` on its own thread and channel. Every
  ordering key belongs to one of them (a stable hash), so the events of a key always go on
  the same channel, in order.
- A story's events go in story order. While consecutive events keep their key they are
  queued at once (one channel keeps them in order); when the key changes (a contract's event,
  then a chargeback on its payment or a withdrawal of its user), the next one waits until
  every earlier event of the story is in the inbox, as events of separate services and
  separate moments do. Hundreds of stories are in flight at once.
- Phase by phase: once every event of the phase is confirmed, the phase's tick goes out, by
  the engine's own broker user (the run's), under routing key `deadline.tick`, as the
  scheduler sends it. It need not wait for the events to be applied: a tick is a barrier.
- Every event (ticks too) is published twice: the copy right behind the original, or after
  the tick of a later phase. A publish the broker did not confirm is sent again until it is,
  which may leave a third copy, as a real upstream would.
- Poison (`tests.e2e.faults.poison`) goes out spread over the load, on a fifth connection.

The publication order is recorded right after each original's confirm: events of one key in
their channel's order, a key switch after the events before it were applied, a tick after
every event of its phase and before every event of the next.
"""

from __future__ import annotations

import queue
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from messages import parse_event
from messages.errors import PublishError
from messages.ordering import ordering_key
from messages.publisher import EventPublisher
from policy.tables import inbox
from testbed.stories import Load, StoryEvent
from tests.e2e.faults.poison import Poison

PUBLISHERS = 4
POLL_S = 0.02
STALL_S = 240.0
"""How long the load may make no progress at all before the run fails."""
PUBLISH_GIVE_UP_S = 180.0


class LoadStalled(AssertionError):
    """Nothing the driver waits for was applied or confirmed for STALL_S."""


def publisher_of(key: str) -> int:
    """The publisher every event of `key` goes through: a stable hash of the key."""
    return zlib.crc32(key.encode("utf-8")) % PUBLISHERS


@dataclass
class DriverStats:
    messages: int = 0
    """Every message published: originals, copies, resends and poison."""
    originals: int = 0
    copies: int = 0
    resends: int = 0
    poison: int = 0
    key_switches: int = 0
    """Times a story's next event had another key and waited for the events before it."""
    switch_waits_s: list[float] = field(default_factory=list)
    """For each key switch, from when the event was due until the ones before were applied."""
    per_publisher: list[int] = field(default_factory=lambda: [0] * PUBLISHERS)
    """Originals confirmed by each publisher."""
    elapsed_s: float = 0.0


class InFlight:
    """Events queued for publishing and not yet seen in the inbox; shared with the fault
    runner."""

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


class PublicationOrder:
    """The originals in the order their confirms came back, across the four publishers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[StoryEvent] = []

    def append(self, event: StoryEvent) -> None:
        with self._lock:
            self._events.append(event)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def events(self) -> list[StoryEvent]:
        with self._lock:
            return list(self._events)

    def lines(self) -> list[str]:
        return [event.line() for event in self.events()]


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


@dataclass(frozen=True, slots=True)
class _Job:
    event: StoryEvent
    copy_now: bool = False
    """Publish the copy right behind the original."""
    is_copy: bool = False


class Lane(threading.Thread):
    """One publisher: its own connection and channel, publishing its queue in order."""

    def __init__(self, number: int, broker_url: str, driver: Driver) -> None:
        super().__init__(name=f"publisher-{number}", daemon=True)
        self.number = number
        self.broker_url = broker_url
        self.driver = driver
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with EventPublisher(self.broker_url, max_attempts=3, max_backoff_s=1.0) as publisher:
                while (job := self.jobs.get()) is not None:
                    try:
                        self._do(publisher, job)
                    finally:
                        self.jobs.task_done()
        except BaseException as exc:  # reported by the coordinator, which fails the run
            self.failure = exc

    def _do(self, publisher: EventPublisher, job: _Job) -> None:
        driver = self.driver
        envelope = job.event.envelope
        send_until_confirmed(lambda: publisher.publish(envelope), driver.count)
        if job.is_copy:
            driver.count("copies")
            return
        driver.order.append(job.event)
        driver.count("originals", publisher=self.number)
        if job.copy_now:
            send_until_confirmed(lambda: publisher.publish(envelope), driver.count)
            driver.count("copies")


def send_until_confirmed(send: Callable[[], object], count: Callable[[str], None]) -> None:
    """Send until the broker confirms; a broker outage only delays the load."""
    began = time.monotonic()
    while True:
        try:
            send()
            count("messages")
            return
        except PublishError:
            if time.monotonic() - began > PUBLISH_GIVE_UP_S:
                raise
            count("resends")
            count("messages")
            time.sleep(0.5)


@dataclass
class Driver:
    load: Load
    broker_url: str
    engine: Engine
    seed: int
    poison: list[Poison]
    on_progress: Callable[[float], None] = lambda _fraction: None
    late_copy_rate: float = 0.4
    stats: DriverStats = field(default_factory=DriverStats)
    in_flight: InFlight = field(default_factory=InFlight)
    order: PublicationOrder = field(default_factory=PublicationOrder)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed * 7919 + 1)
        self._total = max(1, self.load.story_events)
        self._late: dict[int, list[StoryEvent]] = {}
        self._poison_left = deque(self.poison)
        self._keys = {
            event.event_id: ordering_key(parse_event(event.envelope))
            for event in self.load.causal_events()
        }
        # Per story, across phases: the key of its last event queued, and which of its
        # queued events the inbox does not hold yet.
        self._last_key: dict[str, str] = {}
        self._unapplied: dict[str, set[str]] = {}
        self._lanes = [Lane(number, self.broker_url, self) for number in range(PUBLISHERS)]
        self._phase = 0
        self._stats_lock = threading.Lock()
        self._poisoner: EventPublisher | None = None

    def count(self, name: str, *, publisher: int | None = None) -> None:
        """Add one to a counter of `stats` (the publishers' threads count too)."""
        with self._stats_lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
            if publisher is not None:
                self.stats.per_publisher[publisher] += 1

    @property
    def progress(self) -> float:
        return min(1.0, len(self.order) / self._total)

    def run(self) -> DriverStats:
        began = time.monotonic()
        for lane in self._lanes:
            lane.start()
        self._poisoner = EventPublisher(self.broker_url, max_attempts=3, max_backoff_s=1.0)
        try:
            story_of = {
                event.event_id: story.story_id
                for story in self.load.stories
                for event in story.events
            }
            for index, phase in enumerate(self.load.phases()):
                self._run_phase(index, phase.slices, phase.tick, story_of)
            for copies in self._late.values():
                for event in copies:
                    self._queue(event, is_copy=True)
            self._late.clear()
            self._wait_confirmed("the last copies")
            while self._poison_left:
                self._send_poison()
        finally:
            self._poisoner.close()
            for lane in self._lanes:
                lane.jobs.put(None)
            for lane in self._lanes:
                lane.join(timeout=30)
        self.stats.elapsed_s = time.monotonic() - began
        return self.stats

    def _run_phase(
        self,
        index: int,
        slices: tuple[tuple[StoryEvent, ...], ...],
        tick: StoryEvent,
        story_of: dict[str, str],
    ) -> None:
        self._phase = index
        pending = [deque(part) for part in slices if part]
        due_since: dict[str, float] = {}
        last_progress = time.monotonic()
        while pending:
            for part in pending:
                story = story_of[part[0].event_id]
                unapplied = self._unapplied.setdefault(story, set())
                while part:
                    event = part[0]
                    key = self._keys[event.event_id]
                    if key != self._last_key.get(story, key) and unapplied:
                        due_since.setdefault(story, time.monotonic())
                        break
                    if story in due_since:
                        self.stats.key_switches += 1
                        self.stats.switch_waits_s.append(time.monotonic() - due_since.pop(story))
                    part.popleft()
                    self._last_key[story] = key
                    unapplied.add(event.event_id)
                    self._queue(event)
            pending = [part for part in pending if part]
            if self._poll_applied():
                last_progress = time.monotonic()
            self._between_publishes()
            if time.monotonic() - last_progress > STALL_S:
                stuck = sorted(self.in_flight.snapshot())
                raise LoadStalled(f"phase {index}: nothing applied for {STALL_S}s: {stuck[:10]}")
            if pending:
                time.sleep(POLL_S)
        # The tick goes behind every event of its phase, before any of the next.
        self._wait_confirmed(f"the events of phase {index}")
        self._queue(tick)
        self._wait_confirmed(f"the tick of phase {index}")
        for event in self._late.pop(index, []):
            self._queue(event, is_copy=True)

    def _queue(self, event: StoryEvent, *, is_copy: bool = False) -> None:
        lane = self._lanes[publisher_of(self._keys[event.event_id])]
        if is_copy:
            lane.jobs.put(_Job(event, is_copy=True))
            return
        self.in_flight.add(event.event_id)
        copy_now = self._rng.random() >= self.late_copy_rate
        if not copy_now:
            self._late.setdefault(self._phase + self._rng.randint(0, 3), []).append(event)
        lane.jobs.put(_Job(event, copy_now=copy_now))

    def _poll_applied(self) -> bool:
        """Move what the inbox holds out of the stories' unapplied sets; True if any."""
        waiting = self.in_flight.snapshot()
        if not waiting:
            return False
        try:
            done = applied_among(self.engine, waiting)
        except DBAPIError:
            # The driver's own connection is not a target, but a busy server may still drop
            # it; the next poll asks again.
            return False
        if not done:
            return False
        self.in_flight.discard(done)
        for unapplied in self._unapplied.values():
            unapplied.difference_update(done)
        return True

    def _wait_confirmed(self, what: str) -> None:
        """Until every publisher has published (and had confirmed) all it was given."""
        began = time.monotonic()
        while any(lane.jobs.unfinished_tasks for lane in self._lanes):
            self._check_lanes()
            self._poll_applied()
            self._between_publishes()
            if time.monotonic() - began > STALL_S:
                raise LoadStalled(f"{what} not confirmed after {STALL_S}s")
            time.sleep(POLL_S)
        self._check_lanes()

    def _check_lanes(self) -> None:
        for lane in self._lanes:
            if lane.failure is not None:
                raise LoadStalled(f"{lane.name} failed: {lane.failure!r}") from lane.failure
            if not lane.is_alive():
                raise LoadStalled(f"{lane.name} stopped")

    def _between_publishes(self) -> None:
        self.on_progress(self.progress)
        due = len(self.poison) - len(self._poison_left)
        if self._poison_left and self.progress >= (due + 1) / (len(self.poison) + 1):
            self._send_poison()

    def _send_poison(self) -> None:
        """The next poison, on the coordinator's own connection (not a publisher's)."""
        poison, poisoner = self._poison_left.popleft(), self._poisoner
        assert poisoner is not None
        send_until_confirmed(
            lambda: poisoner.publish_raw(
                poison.body, routing_key=poison.routing_key, user_id=poison.user_id
            ),
            self.count,
        )
        self.count("poison")
