"""EventPublisher against a fake pika connection: bare envelopes to `refunds.events` under their
ordering key, the properties MESSAGES.md names, confirms, and the retries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pika
import pika.exceptions
import pytest

from messages import MalformedMessage, PublishError, parse_event
from messages.ordering import ordering_key
from messages.publisher import EventPublisher
from messages.transport import CONTENT_TYPE, EVENTS_EXCHANGE, PERSISTENT

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

    def __getattr__(self, name: str) -> Any:
        # A producer never declares, binds or consumes: any such call fails the test.
        raise AssertionError(f"the publisher called channel.{name}")

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


def test_an_event_goes_to_the_exchange_under_its_ordering_key_as_bare_json() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        key = publisher.publish(ENVELOPE)

    [(exchange, routing_key, body, properties, mandatory)] = broker.published
    assert (exchange, routing_key, key, mandatory) == (EVENTS_EXCHANGE, "c1", "c1", True)
    assert parse_event(body) == parse_event(ENVELOPE)
    assert set(decoded(body)) == {"event_id", "type", "occurred_at", "schema_version", "data"}
    assert properties.delivery_mode == PERSISTENT
    assert properties.content_type == CONTENT_TYPE
    assert properties.message_id == "evt-1"
    assert properties.user_id == "guest"
    assert properties.headers is None


@pytest.mark.parametrize(
    ("type_", "data", "key"),
    [
        ("chargeback.resolved", {"chargeback_id": "cb1", "outcome": "client_won"}, "cb1"),
        ("processor.fee_refunded", {"payment_id": "p9", "amount_minor": 5}, "p9"),
        ("addon.started", {"addon_id": "a1"}, "a1"),
        ("points.awarded", {"user_id": "u2", "points": 10}, "u2"),
    ],
)
def test_the_routing_key_is_the_ordering_key_of_each_type(
    type_: str, data: dict[str, Any], key: str
) -> None:
    broker = FakeBroker()
    event = {**ENVELOPE, "type": type_, "data": data}

    with broker.publisher() as publisher:
        publisher.publish(event)

    assert broker.published[0][1] == key == ordering_key(parse_event(event))


def test_the_user_id_is_the_connections_broker_user() -> None:
    broker = FakeBroker()
    publisher = EventPublisher(
        "amqp://contracts-service:secret@broker.invalid:5672/v", connection_factory=broker.connect
    )

    with publisher:
        publisher.publish(ENVELOPE)

    assert publisher.user == "contracts-service"
    assert broker.published[0][3].user_id == "contracts-service"


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
        publisher.publish(json.dumps(with_null, indent=4).encode())

    first, second = (body for _, _, body, _, _ in broker.published)
    assert first == second
    envelope = decoded(first)
    assert envelope["occurred_at"] == "2026-03-02T10:00:00Z"
    assert "request_id" not in envelope["data"]


def test_a_tick_goes_to_the_same_exchange_under_the_tick_key() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish(TICK)

    [(exchange, routing_key, body, properties, _)] = broker.published
    assert (exchange, routing_key) == (EVENTS_EXCHANGE, "deadline.tick")
    assert decoded(body)["event_id"] == "tick-1"
    assert properties.user_id == "guest"


def test_a_model_and_json_text_are_accepted_too() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish(parse_event(ENVELOPE))
        publisher.publish(json.dumps(ENVELOPE).encode())

    assert broker.published[0][2] == broker.published[1][2]


def test_a_malformed_envelope_is_never_sent() -> None:
    broker = FakeBroker()
    bad = {**ENVELOPE, "data": {**ENVELOPE["data"], "amount_minor": -5}}

    with broker.publisher() as publisher, pytest.raises(MalformedMessage) as caught:
        publisher.publish(bad)

    assert caught.value.fields == ["data.amount_minor"]
    assert broker.published == []
    assert broker.connections == 0


def test_publish_raw_sends_the_bytes_unchecked_under_the_key_given() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        publisher.publish_raw(b"\x00poison", routing_key="c1")
        publisher.publish_raw(b"{}", routing_key="deadline.tick", user_id="someone-else")
        publisher.publish_raw(b"{}", routing_key="c1", user_id=None)

    first, second, third = broker.published
    assert first[:3] == (EVENTS_EXCHANGE, "c1", b"\x00poison")
    assert (first[3].user_id, first[3].message_id, first[3].delivery_mode) == (
        "guest",
        None,
        PERSISTENT,
    )
    assert (second[1], second[3].user_id) == ("deadline.tick", "someone-else")
    assert third[3].user_id is None


def test_one_channel_with_confirms_carries_every_message() -> None:
    broker = FakeBroker()

    with broker.publisher() as publisher:
        for number in range(3):
            publisher.publish({**ENVELOPE, "event_id": f"evt-{number}"})

    assert broker.connections == 1
    assert [decoded(body)["event_id"] for _, _, body, _, _ in broker.published] == [
        "evt-0",
        "evt-1",
        "evt-2",
    ]


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
        publisher.publish(ENVELOPE)

    [(_, routing_key, body, properties, _)] = broker.published
    assert (routing_key, properties.message_id) == ("c1", "evt-1")
    assert parse_event(body) == parse_event(ENVELOPE)
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
