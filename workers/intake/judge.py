"""Judge a message as it arrives: malformed first, then unauthorized, then misrouted
(MESSAGES.md, "Transport"). Only the body, the broker-validated `user_id` and the routing key
are read; nothing else of the message can change what the engine does with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from messages import MalformedMessage, parse_event
from messages.inbound import Envelope
from messages.ordering import ordering_key
from workers.intake.producers import Producers

Problems = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Accepted:
    event: Envelope
    ordering_key: str
    producer: str


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str  # malformed, unauthorized_producer or misrouted
    problems: Problems
    event: Envelope | None = None


def judge(
    body: bytes | str, *, user_id: str | None, routing_key: str | None, producers: Producers
) -> Accepted | Refused:
    try:
        event = parse_event(body)
    except MalformedMessage as exc:
        return Refused("malformed", list(exc.problems))
    if not producers.may_publish(user_id, event.type):
        who = f"broker user {user_id!r}" if user_id else "a message without user_id"
        return Refused(
            "unauthorized_producer", [("user_id", f"{who} may not publish {event.type}")], event
        )
    key = ordering_key(event)
    if routing_key != key:
        return Refused(
            "misrouted",
            [("routing_key", f"is {routing_key!r}; the envelope's ordering key is {key!r}")],
            event,
        )
    assert user_id is not None  # may_publish refuses a message without one
    return Accepted(event, key, user_id)
