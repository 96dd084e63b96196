"""The transport's names and the engine's declaration of the intake (MESSAGES.md, "Transport"):
what `declare_intake` asks of the broker, checked on a recording channel."""

from __future__ import annotations

from typing import Any

from messages.transport import (
    CONTENT_TYPE,
    EVENTS_EXCHANGE,
    INTAKE_QUEUE,
    INTAKE_QUEUE_ARGUMENTS,
    NOTIFICATIONS_EXCHANGE,
    PERSISTENT,
    TICK_TYPE,
    declare_intake,
)


class RecordingChannel:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def exchange_declare(self, **arguments: Any) -> None:
        self.calls.append(("exchange_declare", arguments))

    def queue_declare(self, **arguments: Any) -> None:
        self.calls.append(("queue_declare", arguments))

    def queue_bind(self, **arguments: Any) -> None:
        self.calls.append(("queue_bind", arguments))


def test_the_names_are_the_contracts() -> None:
    assert EVENTS_EXCHANGE == "refunds.events"
    assert NOTIFICATIONS_EXCHANGE == "refunds.notifications"
    assert INTAKE_QUEUE == "refunds.intake"
    assert TICK_TYPE == "deadline.tick"
    assert (CONTENT_TYPE, PERSISTENT) == ("application/json", 2)


def test_declare_intake_binds_every_routing_key_of_the_exchange_to_one_durable_queue() -> None:
    channel = RecordingChannel()

    declare_intake(channel)

    assert channel.calls == [
        (
            "exchange_declare",
            {"exchange": EVENTS_EXCHANGE, "exchange_type": "topic", "durable": True},
        ),
        (
            "queue_declare",
            {"queue": INTAKE_QUEUE, "durable": True, "arguments": INTAKE_QUEUE_ARGUMENTS},
        ),
        ("queue_bind", {"queue": INTAKE_QUEUE, "exchange": EVENTS_EXCHANGE, "routing_key": "#"}),
    ]


def test_the_intake_queue_has_one_active_consumer_so_its_order_is_the_brokers() -> None:
    assert INTAKE_QUEUE_ARGUMENTS == {"x-single-active-consumer": True}


def test_declaring_twice_asks_the_same_again() -> None:
    first, second = RecordingChannel(), RecordingChannel()

    declare_intake(first)
    declare_intake(second)

    assert first.calls == second.calls
