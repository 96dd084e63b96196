"""Regression tests of the defects the fault runs found, each at the smallest scale that shows
it (no server unless the defect needs one)."""

from __future__ import annotations

from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from workers.consumer import ChannelBoundRabbitmqBroker


def consumer_of(broker: RabbitmqBroker, prefetch: int) -> Any:
    """A consumer of queue `q`, as Dramatiq's worker opens one (typed loosely: the RabbitMQ
    consumer's connection is not part of Dramatiq's typed interface)."""
    return broker.consume("q", prefetch=prefetch, timeout=500)


def consume_until_empty(consumer: Any) -> list[str]:
    names = []
    while (message := next(consumer)) is not None:
        names.append(message.args[0])
    return names


@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    ("broker_class", "left"),
    [(RabbitmqBroker, ["B", "D", "E"]), (ChannelBoundRabbitmqBroker, ["B", "C", "D", "E"])],
    ids=["dramatiq", "workers"],
)
def test_an_ack_from_before_a_reconnect_takes_no_other_message(
    rabbit_url: str, broker_class: type[RabbitmqBroker], left: list[str]
) -> None:
    """Dramatiq acks a message through the consumer its queue has when the work is done. After
    a reconnect that is a new channel, whose delivery tags start again at 1: B's old tag 2 now
    names C, which was acked unprocessed (lost if the worker stopped before getting to it).
    The workers' consumer acks only what its own channel delivered."""
    broker = broker_class(url=rabbit_url, confirm_delivery=True)
    broker.declare_queue("q")
    for name in "ABCDE":
        broker.enqueue(Message(queue_name="q", actor_name="a", args=(name,), kwargs={}, options={}))
    first = consumer_of(broker, 2)
    a, b = next(first), next(first)
    first.ack(a)
    assert next(first).args == ("C",)  # the ack of A went out; C came in its place
    first.connection.close()  # the connection drops with B and C unacked

    second = consumer_of(broker, 3)
    assert [(m.args[0], m._tag) for m in (next(second) for _ in range(3))] == [
        ("B", 1),
        ("C", 2),
        ("D", 3),
    ]
    second.ack(b)  # what Dramatiq's worker does with B once processed
    next(second)  # lets the connection send what it was given
    second.connection.close()

    third = consumer_of(broker, 10)
    assert consume_until_empty(third) == left
    third.connection.close()
    broker.close()


@pytest.mark.rabbitmq
def test_an_ack_on_a_closed_connection_returns_at_once(rabbit_url: str) -> None:
    """Dramatiq raises, and its worker thread tries again every five seconds until the consumer
    has reconnected, holding up the messages behind it; the ack can never succeed, since
    RabbitMQ already put the message back when the channel died."""
    broker = ChannelBoundRabbitmqBroker(url=rabbit_url, confirm_delivery=True)
    broker.declare_queue("q")
    broker.enqueue(Message(queue_name="q", actor_name="a", args=("A",), kwargs={}, options={}))
    consumer = consumer_of(broker, 1)
    message = next(consumer)
    consumer.connection.close()

    consumer.ack(message)
    consumer.nack(message)

    again = consumer_of(broker, 1)
    assert consume_until_empty(again) == ["A"]
    again.connection.close()
    broker.close()
