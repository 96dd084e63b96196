"""EventPublisher against a real RabbitMQ: what reaches `refunds.intake` through the
`refunds.events` exchange (body, routing key, properties), what RabbitMQ refuses, and what
happens when the connection is cut under the publisher."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pika
import pytest

from messages import PublishError, parse_event
from messages.publisher import EventPublisher
from messages.transport import CONTENT_TYPE, INTAKE_QUEUE, PERSISTENT, declare_intake

pytestmark = pytest.mark.rabbitmq

T = TypeVar("T")

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
    """A channel on the test vhost with the intake declared, as the engine declares it."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    declare_intake(channel)
    yield channel
    connection.close()


def take(channel: Any, queue: str = INTAKE_QUEUE) -> tuple[Any, Any, bytes]:
    """The next message of `queue`, acknowledged; fails when the queue is empty."""
    method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
    assert method is not None, f"{queue} is empty"
    return method, properties, body


def depth(channel: Any, queue: str) -> int:
    count: int = channel.queue_declare(queue=queue, passive=True).method.message_count
    return count


def test_a_published_event_reaches_the_intake_as_the_bare_envelope_under_its_key(
    rabbit_url: str, reader: Any
) -> None:
    with EventPublisher(rabbit_url) as publisher:
        key = publisher.publish(ENVELOPE)

    method, properties, body = take(reader)
    assert (method.exchange, method.routing_key, key) == ("refunds.events", "c1", "c1")
    assert json.loads(body) == ENVELOPE
    assert properties.delivery_mode == PERSISTENT
    assert properties.content_type == CONTENT_TYPE
    assert properties.message_id == "evt-7f3a"
    assert properties.user_id == "guest"
    assert depth(reader, INTAKE_QUEUE) == 0


def test_a_tick_reaches_the_same_queue_in_publish_order(rabbit_url: str, reader: Any) -> None:
    tick = {**ENVELOPE, "event_id": "tick-1", "type": "deadline.tick", "data": {}}

    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(event(1))
        publisher.publish(tick)
        publisher.publish(event(2))

    keys = [take(reader)[0].routing_key for _ in range(3)]
    assert keys == ["c1", "deadline.tick", "c1"]


def test_a_user_id_other_than_the_connections_is_refused_by_rabbitmq(
    rabbit_url: str, reader: Any
) -> None:
    with (
        EventPublisher(rabbit_url) as publisher,
        pytest.raises(PublishError, match="PRECONDITION_FAILED"),
    ):
        publisher.publish_raw(b"{}", routing_key="deadline.tick", user_id="recourse-engine")

    assert depth(reader, INTAKE_QUEUE) == 0


def test_poison_sent_raw_arrives_as_sent_for_the_intake_to_judge(
    rabbit_url: str, reader: Any
) -> None:
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish_raw(b"\xffnot an envelope", routing_key="anything")
        publisher.publish_raw(b"{}", routing_key="c1", user_id=None)

    first, second = take(reader), take(reader)
    assert (first[0].routing_key, first[2], first[1].user_id) == (
        "anything",
        b"\xffnot an envelope",
        "guest",
    )
    assert second[1].user_id is None


def test_a_message_no_queue_takes_is_an_error_not_a_silent_drop(rabbit_url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        # The exchange without the intake queue behind it.
        connection.channel().exchange_declare(
            exchange="refunds.events", exchange_type="topic", durable=True
        )
    finally:
        connection.close()

    with (
        EventPublisher(rabbit_url, max_attempts=2, sleep=lambda _s: None) as publisher,
        pytest.raises(PublishError, match="Unroutable"),
    ):
        publisher.publish(ENVELOPE)


def test_without_the_exchange_the_publisher_fails_without_retrying(rabbit_url: str) -> None:
    sleeps: list[float] = []

    with (
        EventPublisher(rabbit_url, sleep=sleeps.append) as publisher,
        pytest.raises(PublishError, match="NOT_FOUND"),
    ):
        publisher.publish(ENVELOPE)

    assert sleeps == []


def test_publishing_again_after_the_connection_is_closed_under_the_publisher_succeeds(
    rabbit_url: str, reader: Any
) -> None:
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(event(1))
        connection = publisher._connection
        assert connection is not None
        connection.close()

        publisher.publish(event(2))

    ids = [parse_event(take(reader)[2]).event_id for _ in range(2)]
    assert ids == ["evt-1", "evt-2"]


def test_publishing_again_after_the_broker_closes_the_connection_succeeds(
    rabbit_url: str,
) -> None:
    vhost = rabbit_url.rsplit("/", 1)[1]
    _with_channel(rabbit_url, declare_intake)

    with EventPublisher(rabbit_url, backoff_s=0.1) as publisher:
        publisher.publish(event(1))
        _close_connections_of(vhost)

        publisher.publish(event(2))

    assert _with_channel(rabbit_url, lambda channel: depth(channel, INTAKE_QUEUE)) == 2


def test_a_vhost_that_does_not_exist_fails_without_retrying(rabbit_url: str) -> None:
    sleeps: list[float] = []
    url = rabbit_url.rsplit("/", 1)[0] + "/no-such-vhost"

    with EventPublisher(url, sleep=sleeps.append) as publisher, pytest.raises(PublishError):
        publisher.publish(ENVELOPE)

    assert sleeps == []


def _with_channel(rabbit_url: str, use: Callable[[Any], T]) -> T:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        return use(connection.channel())
    finally:
        connection.close()


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
