"""Two schedulers on one PostgreSQL: only the holder of the advisory lock publishes ticks to
RabbitMQ; when its connection drops (its process died) or it stops, the other takes over."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pika
import pytest
from sqlalchemy import Engine, text

from messages.publisher import EventPublisher
from messages.transport import INTAKE_QUEUE, declare_intake
from scheduler.clock import FixedClock
from workers.tick_publisher import AdvisoryLock, TickPublisher

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

START = datetime(2026, 3, 2, 10, 0, 5, tzinfo=UTC)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    """Poll `condition` until it holds; fail, naming `what`, after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def publishers(rabbit_url: str) -> Iterator[Callable[[], EventPublisher]]:
    """Publishers of the engine's own broker user, onto the engine's exchange and intake
    queue (declared here as `recourse migrate` would)."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    declare_intake(connection.channel())
    connection.close()
    made: list[EventPublisher] = []

    def make() -> EventPublisher:
        made.append(EventPublisher(rabbit_url))
        return made[-1]

    yield make
    for publisher in made:
        publisher.close()


def ticks_on_queue(rabbit_url: str) -> list[dict[str, Any]]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    ticks = []
    while True:
        method, _, body = channel.basic_get(INTAKE_QUEUE, auto_ack=True)
        if method is None:
            break
        assert method.routing_key == "deadline.tick"
        ticks.append(json.loads(body))
    connection.close()
    return ticks


def terminate(engine: Engine, pid: int | None) -> None:
    """What the server does when a process dies: its session ends, its locks go."""
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()


def test_one_scheduler_publishes_and_the_other_takes_over_when_its_connection_drops(
    pg_engine: Engine, rabbit_url: str, publishers: Callable[[], EventPublisher]
) -> None:
    clock = FixedClock(START)
    first_lock, second_lock = AdvisoryLock(pg_engine), AdvisoryLock(pg_engine)
    first = TickPublisher(first_lock, publishers().publish, clock=clock, interval_seconds=60)
    second = TickPublisher(second_lock, publishers().publish, clock=clock, interval_seconds=60)

    assert first.step() is not None
    assert second.step() is None
    clock.advance(timedelta(minutes=1))
    assert first.step() is not None
    assert second.step() is None

    terminate(pg_engine, first_lock.backend_pid)
    clock.advance(timedelta(minutes=1))
    wait_until(lambda: second.step() is not None, "the second scheduler to take over")
    assert first.step() is None
    assert not first.leading

    ticks = ticks_on_queue(rabbit_url)
    assert [tick["event_id"] for tick in ticks] == [
        "tick:2026-03-02T10:00:00Z",
        "tick:2026-03-02T10:01:00Z",
        "tick:2026-03-02T10:02:00Z",
    ]
    first_lock.release()
    second_lock.release()


def test_a_scheduler_that_stops_hands_over_and_two_loops_never_publish_together(
    pg_engine: Engine, rabbit_url: str, publishers: Callable[[], EventPublisher]
) -> None:
    published: list[tuple[str, str]] = []
    guard = threading.Lock()

    def recording(name: str, publisher: EventPublisher) -> Callable[[dict[str, Any]], None]:
        def publish(envelope: dict[str, Any]) -> None:
            publisher.publish(envelope)
            with guard:
                published.append((name, envelope["event_id"]))

        return publish

    loops = {}
    for name in ("first", "second"):
        ticks = TickPublisher(
            AdvisoryLock(pg_engine),
            recording(name, publishers()),
            interval_seconds=0.1,
            poll_seconds=0.05,
        )
        stop = threading.Event()
        thread = threading.Thread(target=ticks.run, args=(stop,), name=name)
        loops[name] = (ticks, stop, thread)
    loops["first"][2].start()
    wait_until(lambda: loops["first"][0].leading, "the first scheduler to lead")
    loops["second"][2].start()
    wait_until(lambda: len(published) >= 5, "five ticks")

    _, stop_first, first_thread = loops["first"]
    stop_first.set()
    first_thread.join(timeout=10)
    handed_over_at = len(published)
    wait_until(lambda: len(published) >= handed_over_at + 3, "ticks from the second")
    loops["second"][1].set()
    loops["second"][2].join(timeout=10)

    publishers_in_order = [name for name, _ in published]
    switch = publishers_in_order.index("second")
    assert set(publishers_in_order[:switch]) == {"first"}
    assert set(publishers_in_order[switch:]) == {"second"}
    assert switch >= 5
    queued = ticks_on_queue(rabbit_url)
    assert len(queued) == len(published)
    bodies_by_id: dict[str, set[str]] = {}
    for tick in queued:
        bodies_by_id.setdefault(tick["event_id"], set()).add(json.dumps(tick, sort_keys=True))
    assert all(len(bodies) == 1 for bodies in bodies_by_id.values())
