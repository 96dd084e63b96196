"""The wire format is Dramatiq's own: checked against the installed Dramatiq, not a copy of it."""

from __future__ import annotations

import json
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL, RabbitmqBroker
from dramatiq.brokers.stub import StubBroker

from messages.transport import (
    DEAD_MESSAGE_TTL_MS,
    EVENT_ACTOR,
    EVENTS_QUEUE,
    TICK_ACTOR,
    TICKS_QUEUE,
    dramatiq_message_body,
    new_message_id,
    queue_declarations,
    route_for,
)

ENVELOPE: dict[str, Any] = {
    "event_id": "evt-1",
    "type": "contract.closed",
    "occurred_at": "2026-03-02T10:00:00Z",
    "schema_version": 1,
    "data": {"contract_id": "c1", "note": "caf\u00e9"},
}


class RecordingChannel:
    def __init__(self) -> None:
        self.declared: list[tuple[str, bool, dict[str, Any]]] = []

    def queue_declare(self, queue: str, durable: bool, arguments: dict[str, Any]) -> None:
        self.declared.append((queue, durable, arguments))


def test_the_body_is_byte_for_byte_what_dramatiq_encodes() -> None:
    message_id = new_message_id()
    expected = dramatiq.Message(
        queue_name=EVENTS_QUEUE,
        actor_name=EVENT_ACTOR,
        args=(ENVELOPE,),
        kwargs={},
        options={},
        message_id=message_id,
        message_timestamp=1772445600000,
    ).encode()

    body = dramatiq_message_body(
        ENVELOPE, EVENTS_QUEUE, EVENT_ACTOR, message_id, message_timestamp_ms=1772445600000
    )

    assert body == expected


def test_dramatiq_decodes_the_body_into_a_call_with_the_envelope() -> None:
    body = dramatiq_message_body(ENVELOPE, TICKS_QUEUE, TICK_ACTOR, "m-1")

    message = dramatiq.Message.decode(body)

    assert message.queue_name == TICKS_QUEUE
    assert message.actor_name == TICK_ACTOR
    assert message.args == (ENVELOPE,)
    assert message.kwargs == {}
    assert message.message_id == "m-1"
    assert message.message_timestamp == json.loads(body)["message_timestamp"]


def test_the_body_is_a_pure_function_of_its_arguments_when_the_time_is_given() -> None:
    first = dramatiq_message_body(ENVELOPE, EVENTS_QUEUE, EVENT_ACTOR, "m", message_timestamp_ms=1)
    again = dramatiq_message_body(ENVELOPE, EVENTS_QUEUE, EVENT_ACTOR, "m", message_timestamp_ms=1)

    assert first == again


def test_any_json_value_can_be_wrapped_so_tests_can_send_poison() -> None:
    body = dramatiq_message_body("not an envelope", EVENTS_QUEUE, EVENT_ACTOR, "m")

    assert dramatiq.Message.decode(body).args == ("not an envelope",)


@pytest.mark.parametrize("queue", [EVENTS_QUEUE, TICKS_QUEUE])
def test_queues_are_declared_exactly_as_dramatiq_declares_them(queue: str) -> None:
    # Dramatiq declares lazily through its per-thread channel; a recording channel in that slot
    # captures the declarations without a server.
    broker: Any = RabbitmqBroker(url="amqp://guest:guest@127.0.0.1:5672/", confirm_delivery=True)
    channel = RecordingChannel()
    broker.state.channel = channel

    broker._declare_queue(queue)
    broker._declare_dq_queue(queue)
    broker._declare_xq_queue(queue)

    ours = [(name, True, arguments) for name, arguments in queue_declarations(queue)]
    assert ours == channel.declared
    assert DEAD_MESSAGE_TTL_MS == DEAD_MESSAGE_TTL


def test_ticks_travel_on_their_own_queue() -> None:
    assert route_for("deadline.tick") == (TICKS_QUEUE, TICK_ACTOR)
    assert route_for("milestone.funded") == (EVENTS_QUEUE, EVENT_ACTOR)


def test_dramatiq_accepts_the_queue_names() -> None:
    broker = StubBroker()

    def handle(envelope: dict[str, Any]) -> None:
        del envelope

    for queue, actor in ((EVENTS_QUEUE, EVENT_ACTOR), (TICKS_QUEUE, TICK_ACTOR)):
        registered = dramatiq.actor(actor_name=actor, queue_name=queue, broker=broker)(handle)
        assert (registered.queue_name, registered.actor_name) == (queue, actor)
