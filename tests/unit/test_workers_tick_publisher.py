"""The tick publisher without a database: tick times and ids, leadership, and the loop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from messages import parse_event
from messages.inbound import DeadlineTickEvent
from scheduler.clock import FixedClock
from workers.metrics import EngineMetrics
from workers.tick_publisher import LocalLock, TickPublisher, tick_envelope, tick_time

START = datetime(2026, 3, 2, 10, 0, 17, 250_000, tzinfo=UTC)


class FakeLock:
    def __init__(self, *, free: bool = True) -> None:
        self.free = free
        self.held = False
        self.released = False

    def try_acquire(self) -> bool:
        self.held = self.held or self.free
        return self.held

    def still_held(self) -> bool:
        return self.held

    def release(self) -> None:
        self.released = True
        self.held = False


def no_ticks() -> list[dict[str, Any]]:
    return []


def publisher(lock: Any, clock: FixedClock, sent: list[dict[str, Any]], **kwargs: Any) -> Any:
    return TickPublisher(lock, sent.append, clock=clock, interval_seconds=60, **kwargs)


def test_a_tick_time_is_the_clock_rounded_down_to_the_interval() -> None:
    assert tick_time(START, 60) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert tick_time(START, 0.5) == datetime(2026, 3, 2, 10, 0, 17, tzinfo=UTC)
    assert tick_time(START, 3600) == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_two_instances_make_the_same_tick_in_the_same_interval() -> None:
    first = tick_envelope(tick_time(START, 60))
    second = tick_envelope(tick_time(START + timedelta(seconds=30), 60))

    assert first == second
    assert first["event_id"] == "tick:2026-03-02T10:00:00Z"
    event = parse_event(first)
    assert isinstance(event, DeadlineTickEvent)
    assert event.occurred_at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_the_leader_publishes_one_tick_per_interval() -> None:
    clock, sent = FixedClock(START), no_ticks()
    ticks = publisher(FakeLock(), clock, sent)

    first = ticks.step()
    clock.advance(timedelta(seconds=30))
    assert ticks.step() is None
    clock.advance(timedelta(seconds=30))
    second = ticks.step()

    assert [tick["event_id"] for tick in sent] == [
        "tick:2026-03-02T10:00:00Z",
        "tick:2026-03-02T10:01:00Z",
    ]
    assert sent == [first, second]


def test_a_follower_publishes_nothing_until_the_lock_is_free() -> None:
    clock, sent, lock = FixedClock(START), no_ticks(), FakeLock(free=False)
    ticks = publisher(lock, clock, sent)

    assert ticks.step() is None
    assert not ticks.leading
    lock.free = True
    assert ticks.step() is not None
    assert ticks.leading


def test_a_leader_that_loses_its_lock_stops_publishing() -> None:
    clock, sent, lock = FixedClock(START), no_ticks(), FakeLock()
    metrics = EngineMetrics()
    ticks = publisher(lock, clock, sent, metrics=metrics)
    ticks.step()
    assert metrics.value("recourse_scheduler_leader") == 1

    lock.held = lock.free = False
    clock.advance(timedelta(minutes=5))

    assert ticks.step() is None
    assert not ticks.leading
    assert len(sent) == 1
    assert metrics.value("recourse_scheduler_leader") == 0
    assert metrics.value("recourse_ticks_published_total") == 1


def test_a_late_leader_publishes_the_current_tick_only() -> None:
    """A tick fires every deadline due up to its time, so missed ticks need no catching up."""
    clock, sent = FixedClock(START), no_ticks()
    ticks = publisher(FakeLock(), clock, sent)
    ticks.step()
    clock.advance(timedelta(hours=3))

    ticks.step()

    assert [tick["occurred_at"] for tick in sent] == [
        "2026-03-02T10:00:00Z",
        "2026-03-02T13:00:00Z",
    ]


def test_the_loop_publishes_until_stopped_and_releases_the_lock() -> None:
    stop, lock = threading.Event(), FakeLock()
    sent: list[dict[str, Any]] = []

    def publish(envelope: dict[str, Any]) -> None:
        sent.append(envelope)
        if len(sent) == 3:
            stop.set()

    clock = FixedClock(START)

    class MovingClock:
        def now(self) -> datetime:
            clock.advance(timedelta(milliseconds=100))
            return clock.now()

    ticks = TickPublisher(lock, publish, clock=MovingClock(), interval_seconds=0.1)
    thread = threading.Thread(target=ticks.run, args=(stop,))
    thread.start()
    thread.join(timeout=10)

    assert not thread.is_alive()
    assert len({tick["event_id"] for tick in sent}) == 3
    assert lock.released


def test_a_failed_publish_is_logged_and_tried_again() -> None:
    stop, attempts = threading.Event(), []

    def publish(envelope: dict[str, Any]) -> None:
        attempts.append(envelope)
        if len(attempts) == 1:
            raise ConnectionError("broker away")
        stop.set()

    ticks = TickPublisher(
        LocalLock(), publish, clock=FixedClock(START), interval_seconds=60, poll_seconds=0.01
    )
    ticks.run(stop)

    assert [tick["event_id"] for tick in attempts] == ["tick:2026-03-02T10:00:00Z"] * 2
