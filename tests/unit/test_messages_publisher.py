"""EventPublisher's behaviour against a fake pika connection: validation, routing, retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest

from messages import MalformedMessage, PublishError, parse_event
from messages.publisher import EventPublisher
from messages.transport import (
    EVENT_ACTOR,
    EVENTS_QUEUE,
    PERSISTENT,
    TICK_ACTOR,
    TICKS_QUEUE,
    dead_letter_queue,
    delay_queue,
)

ENVELOPE: dict[str, Any] = {
    "event_id": "evt-1",
    "type": "milestone.funded",
    "occurred_at": "2026-03-02T11:00:00+01:00",
    "schema_version": 1,
    "data": {
        "contract_id": "c1",
        "milestone_id": "m1",
        "payment_id": "p1",
        "amount_minor": 50000,
        "processor_fee_minor": 1480,
    },
}

TICK: dict[str, Any] = {
    "event_id": "tick-1",
    "type": "deadline.tick",
    "occurred_at": "2026-03-02T10:01:00Z",
    "schema_version": 1,
    "data": {},
}


class FakeChannel:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.is_open = True
        self.confirming = False

    def confirm_delivery(self) -> None:
        self.confirming = True

    def queue_declare(self, queue: str, durable: bool, arguments: dict[str, Any]) -> None:
        assert durable
        self.broker.declared.append(queue)

    def basic_publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: pika.BasicProperties,
        mandatory: bool,
    ) -> None:
        assert self.confirming, "published before confirms were on"
        if self.broker.failures:
            failure = self.broker.failures.pop(0)
            self.is_open = False
            raise failure
        self.broker.published.append((exchange, routing_key, body, properties, mandatory))


class FakeConnection:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.is_open = True

    def channel(self) -> FakeChannel:
        return FakeChannel(self.broker)

    def close(self) -> None:
        self.is_open = False
        self.broker.closed += 1


class FakeBroker:
    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = list(failures or [])
        self.connect_failures: list[Exception] = []
        self.published: list[tuple[str, str, bytes, pika.BasicProperties, bool]] = []
        self.declared: list[str] = []
        self.connections = 0
        self.closed = 0
        self.sleeps: list[float] = []

    def connect(self, parameters: pika.connection.Parameters) -> Any:
        self.connections += 1
        if self.connect_failures:
            raise self.connect_failures.pop(0)
        return FakeConnection(self)

    def publisher(self, **options: Any) -> EventPublisher:
        factory: Callable[[pika.connection.Parameters], Any] = self.connect
        return EventPublisher(
            "amqp://guest:guest@broker.invalid:5672/",
            connection_factory=factory,
            sleep=self.sleeps.append,
            **options,
        )


def decoded(body: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(body)
    return result


def test_an_event_goes_to_the_events_queue_as_a_persistent_dramatiq_message() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        message_id = publisher.publish(ENVELOPE)

    [(exchange, queue, body, properties, mandatory)] = broker.published
    message = decoded(body)
    assert (exchange, queue, mandatory) == ("", EVENTS_QUEUE, True)
    assert properties.delivery_mode == PERSISTENT
    assert properties.message_id == message_id
    assert message["queue_name"] == EVENTS_QUEUE
    assert message["actor_name"] == EVENT_ACTOR
    assert message["message_id"] == message_id
    assert message["kwargs"] == {} and message["options"] == {}
    [envelope] = message["args"]
    assert parse_event(envelope) == parse_event(ENVELOPE)


def test_the_envelope_is_sent_in_canonical_form() -> None:
    broker = FakeBroker()
    with_null = {**ENVELOPE, "type": "refund.approved"}
    with_null["data"] = {
        "contract_id": "c1",
        "target_id": "m1",
        "amount_minor": 100,
        "approved_by": "creator",
        "request_id": None,
    }

    with broker.publisher() as publisher:
        publisher.publish(with_null)

    [envelope] = decoded(broker.published[0][2])["args"]
    assert envelope["occurred_at"] == "2026-03-02T10:00:00Z"
    assert "request_id" not in envelope["data"]


def test_a_tick_goes_to_the_ticks_queue_for_the_tick_actor() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish(TICK)

    [(_, queue, body, _, _)] = broker.published
    assert queue == TICKS_QUEUE
    assert decoded(body)["actor_name"] == TICK_ACTOR


def test_a_model_and_json_text_are_accepted_too() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish(parse_event(ENVELOPE))
        publisher.publish(json.dumps(ENVELOPE).encode())

    assert len(broker.published) == 2


def test_a_malformed_envelope_is_never_sent() -> None:
    broker = FakeBroker()
    bad = {**ENVELOPE, "data": {**ENVELOPE["data"], "amount_minor": -5}}

    with broker.publisher() as publisher, pytest.raises(MalformedMessage) as caught:
        publisher.publish(bad)

    assert caught.value.fields == ["data.amount_minor"]
    assert broker.published == []
    assert broker.connections == 0


def test_publish_raw_sends_the_bytes_unchecked() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish_raw(b"\x00poison", queue=TICKS_QUEUE)

    [(_, queue, body, properties, _)] = broker.published
    assert (queue, body) == (TICKS_QUEUE, b"\x00poison")
    assert properties.delivery_mode == PERSISTENT


def test_every_queue_and_its_dq_and_xq_are_declared_on_a_new_channel() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish(ENVELOPE)
        publisher.publish(ENVELOPE)

    expected = [
        name
        for queue in (EVENTS_QUEUE, TICKS_QUEUE)
        for name in (queue, delay_queue(queue), dead_letter_queue(queue))
    ]
    assert broker.declared == expected


@pytest.mark.parametrize(
    "failure",
    [
        pika.exceptions.StreamLostError("connection reset"),
        pika.exceptions.ConnectionClosedByBroker(320, "CONNECTION_FORCED"),
        pika.exceptions.ChannelClosedByBroker(504, "CHANNEL_ERROR"),
        pika.exceptions.ChannelWrongStateError("channel is closed"),
        pika.exceptions.NackError([]),
        pika.exceptions.UnroutableError([]),
    ],
)
def test_a_dropped_connection_or_channel_is_reopened_and_the_same_message_resent(
    failure: Exception,
) -> None:
    broker = FakeBroker(failures=[failure])

    with broker.publisher() as publisher:
        message_id = publisher.publish(ENVELOPE)

    [(_, _, body, _, _)] = broker.published
    assert decoded(body)["message_id"] == message_id
    assert broker.connections == 2
    assert broker.sleeps == [0.2]


def test_a_broker_that_cannot_be_reached_is_retried_with_backoff_then_given_up() -> None:
    broker = FakeBroker()
    broker.connect_failures = [pika.exceptions.AMQPConnectionError("refused")] * 10

    publisher = broker.publisher(max_attempts=6, backoff_s=0.5, max_backoff_s=3.0)
    with publisher, pytest.raises(PublishError, match="after 6 attempts"):
        publisher.publish(ENVELOPE)

    assert broker.connections == 6
    assert broker.sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert broker.published == []


def test_a_reconnect_after_failures_within_the_bound_succeeds() -> None:
    broker = FakeBroker()
    broker.connect_failures = [ConnectionRefusedError("refused")] * 2

    with broker.publisher(max_attempts=3) as publisher:
        publisher.publish(ENVELOPE)

    assert len(broker.published) == 1
    assert broker.connections == 3


@pytest.mark.parametrize(
    "failure",
    [
        pika.exceptions.ChannelClosedByBroker(406, "PRECONDITION_FAILED - inequivalent arg"),
        pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED"),
        pika.exceptions.ConnectionClosedByBroker(530, "NOT_ALLOWED - vhost not found"),
        pika.exceptions.ProbableAuthenticationError("bad password"),
    ],
)
def test_a_refusal_that_would_repeat_is_not_retried(failure: Exception) -> None:
    broker = FakeBroker(failures=[failure])

    with broker.publisher() as publisher, pytest.raises(PublishError, match="refused"):
        publisher.publish(ENVELOPE)

    assert broker.sleeps == []


def test_closing_closes_the_connection_and_refuses_later_publishes() -> None:
    broker = FakeBroker()
    publisher = broker.publisher()
    publisher.publish(ENVELOPE)

    publisher.close()

    assert broker.closed == 1
    with pytest.raises(PublishError, match="closed"):
        publisher.publish(ENVELOPE)


def test_max_attempts_must_allow_one_attempt() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        EventPublisher("amqp://guest:guest@localhost/", max_attempts=0)
