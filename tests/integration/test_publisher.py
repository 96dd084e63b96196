"""EventPublisher against a real RabbitMQ: what lands on the queue, what Dramatiq makes of it,
and what happens when the connection is cut under the publisher."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from messages import PublishError, parse_event
from messages.publisher import EventPublisher
from messages.transport import (
    EVENT_ACTOR,
    EVENTS_QUEUE,
    PERSISTENT,
    TICK_ACTOR,
    TICKS_QUEUE,
    dead_letter_queue,
)

pytestmark = pytest.mark.rabbitmq

ENVELOPE: dict[str, Any] = {
    "event_id": "evt-7f3a",
    "type": "milestone.funded",
    "occurred_at": "2026-03-02T10:00:00Z",
    "schema_version": 1,
    "data": {
        "contract_id": "c1",
        "milestone_id": "m1",
        "payment_id": "p1",
        "amount_minor": 50000,
        "processor_fee_minor": 1480,
    },
}


def event(number: int) -> dict[str, Any]:
    return {**ENVELOPE, "event_id": f"evt-{number}"}


@pytest.fixture
def reader(rabbit_url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    yield connection.channel()
    connection.close()


def take(channel: Any, queue: str) -> tuple[Any, bytes]:
    """The next message of `queue`, acknowledged; fails when the queue is empty."""
    method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
    assert method is not None, f"{queue} is empty"
    return properties, body


def depth(channel: Any, queue: str) -> int:
    count: int = channel.queue_declare(queue=queue, passive=True).method.message_count
    return count


def test_a_published_event_reads_back_as_a_dramatiq_message_of_the_envelope(
    rabbit_url: str, reader: Any
) -> None:
    import dramatiq

    with EventPublisher(rabbit_url) as publisher:
        message_id = publisher.publish(ENVELOPE)

    properties, body = take(reader, EVENTS_QUEUE)
    message = dramatiq.Message.decode(body)
    assert properties.delivery_mode == PERSISTENT
    assert message.queue_name == EVENTS_QUEUE
    assert message.actor_name == EVENT_ACTOR
    assert message.message_id == message_id
    assert message.args == (ENVELOPE,)
    assert parse_event(message.args[0]) == parse_event(ENVELOPE)


def test_a_tick_lands_on_the_ticks_queue(rabbit_url: str, reader: Any) -> None:
    import dramatiq

    tick = {**ENVELOPE, "event_id": "tick-1", "type": "deadline.tick", "data": {}}

    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(tick)

    _, body = take(reader, TICKS_QUEUE)
    assert dramatiq.Message.decode(body).actor_name == TICK_ACTOR
    assert depth(reader, EVENTS_QUEUE) == 0


def test_a_dramatiq_worker_runs_the_actor_with_the_envelope(rabbit_url: str) -> None:
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    # Publishing first means the queues exist with the publisher's arguments when Dramatiq
    # declares them: a mismatch would fail here with PRECONDITION_FAILED.
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(ENVELOPE)

    broker = RabbitmqBroker(url=rabbit_url, confirm_delivery=True)
    received: list[dict[str, Any]] = []
    done = threading.Event()

    def handle_event(envelope: dict[str, Any]) -> None:
        received.append(envelope)
        done.set()

    dramatiq.actor(actor_name=EVENT_ACTOR, queue_name=EVENTS_QUEUE, broker=broker)(handle_event)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        assert done.wait(timeout=20), "the actor never ran"
    finally:
        worker.stop()
        broker.close()

    assert received == [ENVELOPE]


def test_publishing_again_after_the_connection_is_closed_under_the_publisher_succeeds(
    rabbit_url: str, reader: Any
) -> None:
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(event(1))
        connection = publisher._connection
        assert connection is not None
        connection.close()

        publisher.publish(event(2))

    ids = [parse_event(_envelope(take(reader, EVENTS_QUEUE)[1])).event_id for _ in range(2)]
    assert ids == ["evt-1", "evt-2"]


def test_publishing_again_after_the_broker_closes_the_connection_succeeds(
    rabbit_url: str,
) -> None:
    vhost = rabbit_url.rsplit("/", 1)[1]

    with EventPublisher(rabbit_url, backoff_s=0.1) as publisher:
        publisher.publish(event(1))
        _close_connections_of(vhost)

        publisher.publish(event(2))

    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        assert depth(connection.channel(), EVENTS_QUEUE) == 2
    finally:
        connection.close()


def test_poison_sent_raw_is_dead_lettered_by_dramatiq(rabbit_url: str, reader: Any) -> None:
    import dramatiq
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    with EventPublisher(rabbit_url) as publisher:
        publisher.publish_raw(b"this is not a Dramatiq message")

    broker = RabbitmqBroker(url=rabbit_url, confirm_delivery=True)
    dramatiq.actor(actor_name=EVENT_ACTOR, queue_name=EVENTS_QUEUE, broker=broker)(_ignore)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        _wait_until(lambda: depth(reader, dead_letter_queue(EVENTS_QUEUE)) == 1)
    finally:
        worker.stop()
        broker.close()

    _, body = take(reader, dead_letter_queue(EVENTS_QUEUE))
    assert body == b"this is not a Dramatiq message"


def test_a_queue_declared_with_other_arguments_is_a_clear_error(
    rabbit_url: str, reader: Any
) -> None:
    reader.queue_declare(queue=EVENTS_QUEUE, durable=True, arguments={"x-max-priority": 10})

    with (
        EventPublisher(rabbit_url) as publisher,
        pytest.raises(PublishError, match="PRECONDITION_FAILED"),
    ):
        publisher.publish(ENVELOPE)


def test_a_vhost_that_does_not_exist_fails_without_retrying(rabbit_url: str) -> None:
    sleeps: list[float] = []
    url = rabbit_url.rsplit("/", 1)[0] + "/no-such-vhost"

    with EventPublisher(url, sleep=sleeps.append) as publisher, pytest.raises(PublishError):
        publisher.publish(ENVELOPE)

    assert sleeps == []


def _ignore(envelope: dict[str, Any]) -> None:
    del envelope


def _envelope(body: bytes) -> dict[str, Any]:
    import dramatiq

    envelope: dict[str, Any] = dramatiq.Message.decode(body).args[0]
    return envelope


def _wait_until(condition: Any, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _close_connections_of(vhost: str) -> None:
    """Close, from the broker's side, as an operator would, every connection on `vhost`."""
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "pid", "vhost"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    pids = [line.split("\t")[0] for line in listing.splitlines() if line.endswith(f"\t{vhost}")]
    assert pids, f"no connection on {vhost}"
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "closed by the reconnect test"],
            check=True,
            capture_output=True,
            timeout=60,
        )
