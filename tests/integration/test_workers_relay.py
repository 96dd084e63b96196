"""The outbox relay against PostgreSQL and RabbitMQ: every row published once in the normal
case, also with several relays at once; after a crash between publish and mark, sent again,
never lost."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pika
import pytest
from sqlalchemy import Engine, func, insert, select

from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.tables import outbox
from workers.relay import OutboxNotification, OutboxRelay, RabbitNotificationSink

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TYPES = ("refund.completed", "dispute.opened", "escrow.frozen")


@pytest.fixture
def channel(rabbit_url: str) -> Iterator[Any]:
    """A channel with a queue bound to every notification type."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    channel.exchange_declare(NOTIFICATIONS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare("consumer", durable=True)
    channel.queue_bind("consumer", NOTIFICATIONS_EXCHANGE, routing_key="#")
    yield channel
    connection.close()


def write_outbox(engine: Engine, count: int) -> dict[str, str]:
    """`count` rows of the three types; returns notification id -> type."""
    written = {}
    with engine.begin() as conn:
        for number in range(count):
            type_ = TYPES[number % len(TYPES)]
            notification_id = f"evt-{number}:{type_}"
            body = {"notification_id": notification_id, "type": type_, "data": {"n": number}}
            conn.execute(
                insert(outbox).values(
                    notification_id=notification_id,
                    type=type_,
                    occurred_at=AT,
                    body=json.dumps(body),
                    event_id=f"evt-{number}",
                )
            )
            written[notification_id] = type_
    return written


def consume_all(channel: Any) -> list[tuple[Any, Any, dict[str, Any]]]:
    received: list[tuple[Any, Any, dict[str, Any]]] = []
    while True:
        method, properties, body = channel.basic_get("consumer", auto_ack=True)
        if method is None:
            return received
        received.append((method, properties, json.loads(body)))


def unsent(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()


def test_each_row_is_published_once_with_its_id_type_and_persistence(
    pg_engine: Engine, rabbit_url: str, channel: Any
) -> None:
    written = write_outbox(pg_engine, 25)

    with RabbitNotificationSink(rabbit_url) as sink:
        assert OutboxRelay(pg_engine, sink, batch_size=10).drain() == 25

    received = consume_all(channel)
    assert [body["notification_id"] for _, _, body in received] == list(written)
    for method, properties, body in received:
        assert properties.message_id == body["notification_id"]
        assert method.routing_key == written[body["notification_id"]]
        assert properties.delivery_mode == 2
    assert unsent(pg_engine) == 0


def test_relays_running_side_by_side_share_the_rows_without_sending_one_twice(
    pg_engine: Engine, rabbit_url: str, channel: Any
) -> None:
    written = write_outbox(pg_engine, 120)
    counts: list[int] = []
    start = threading.Barrier(3)

    def relay() -> None:
        with RabbitNotificationSink(rabbit_url) as sink:
            start.wait()
            counts.append(OutboxRelay(pg_engine, sink, batch_size=7).drain())

    threads = [threading.Thread(target=relay) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    received = Counter(body["notification_id"] for _, _, body in consume_all(channel))
    assert sum(counts) == 120
    assert received == Counter(list(written))
    assert unsent(pg_engine) == 0


class CrashAfterPublish:
    """Publishes for real, then the process dies before the relay marks anything sent."""

    def __init__(self, sink: RabbitNotificationSink) -> None:
        self.sink = sink

    def publish(self, notification: OutboxNotification) -> None:
        self.sink.publish(notification)
        raise SystemExit("killed between publish and mark")


def test_a_crash_between_publish_and_mark_sends_again_and_loses_nothing(
    pg_engine: Engine, rabbit_url: str, channel: Any
) -> None:
    written = write_outbox(pg_engine, 9)

    with RabbitNotificationSink(rabbit_url) as sink:
        with pytest.raises(SystemExit):
            OutboxRelay(pg_engine, CrashAfterPublish(sink), batch_size=4).relay_batch()
        assert unsent(pg_engine) == 9
        assert OutboxRelay(pg_engine, sink, batch_size=4).drain() == 9

    received = Counter(body["notification_id"] for _, _, body in consume_all(channel))
    first = next(iter(written))
    assert received == Counter(list(written)) + Counter([first])
    assert unsent(pg_engine) == 0
