"""Poison: messages the intake must refuse, each of which must end as a row of the
`dead_letters` table with the right reason and touch nothing else.

Each is a bare body published to `refunds.events` as a producer would (MESSAGES.md,
"Transport"), under a routing key of its own, so that its dead letter is found by that key:
bodies that are no envelope (not JSON, a JSON array, a repeated key, 300 KiB, nested 100
deep, wrong types, an unknown type, an id with a control character: see `ids_are_checked`)
are `malformed`; a valid envelope under a routing key that is not its ordering key is
`misrouted`; one without a `user_id` is `unauthorized_producer`. A tick forged by a
producer is not here: the fault run's broker user is the engine's own, which may publish
ticks (another test covers it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from messages import MalformedMessage, parse_event

KIB = 1024

MALFORMED = frozenset({"malformed"})


@dataclass(frozen=True, slots=True)
class Poison:
    name: str
    body: bytes
    routing_key: str
    """Unique to this poison: how its dead letter is told apart from the others."""
    reasons: frozenset[str]
    """The dead-letter reasons that are right for it."""
    user_id: str | None = ""
    """The `user_id` property: "" for the connection's user, None for none at all."""
    event_id: str | None = None
    """The envelope's event id, when it has a readable one: it must never reach the inbox."""


def _envelope(event_id: str, contract_id: str, **changes: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "event_id": event_id,
        "type": "milestone.funded",
        "occurred_at": "2031-03-04T10:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": contract_id,
            "milestone_id": "poison-milestone",
            "payment_id": "poison-payment",
            "amount_minor": 12_000,
            "processor_fee_minor": 378,
        },
    }
    data = changes.pop("data", {})
    envelope.update(changes)
    envelope["data"] = {**envelope["data"], **data}
    return envelope


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _malformed(name: str, body: bytes, event_id: str | None = None) -> Poison:
    return Poison(name, body, f"poison-{name}", MALFORMED, event_id=event_id)


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"n": value}
    return value


def ids_are_checked(body: bytes) -> bool:
    """Whether the models refuse an id with a control character (MESSAGES.md, "Limits").

    The Limits reach `messages` with branch `contract`; until then such an id is read as any
    other, and a message carrying one would be applied, not refused, so it is left out.
    """
    try:
        parse_event(body)
    except MalformedMessage:
        return True
    return False


def poison_messages() -> list[Poison]:
    """One of every kind of poison, in a fixed order."""
    # Valid but for its size: JSON allows the white space around the object.
    big = _json(_envelope("poison-300k", "poison-300k")) + b" " * (300 * KIB)
    repeated = _json(_envelope("poison-repeated", "poison-repeated"))
    repeated = repeated.replace(b'{"event_id":', b'{"event_id":"poison-first","event_id":', 1)
    misrouted = _envelope("poison-misrouted", "poison-misrouted-contract")
    unsigned = _envelope("poison-no-user", "poison-no-user")
    control = _json(_envelope("poison\x07bell", "poison-bell"))
    return [
        _malformed("not-json", b'{"event_id":"poison-not-json","type":'),
        _malformed("json-array", b'[{"event_id":"poison-array"}]'),
        _malformed("repeated-keys", repeated, "poison-first"),
        _malformed("body-300k", big, "poison-300k"),
        _malformed(
            "nested-100",
            _json(_envelope("poison-nested", "poison-nested", data={"extra": _nested(100)})),
            "poison-nested",
        ),
        _malformed(
            "string-amount",
            _json(_envelope("poison-string", "poison-string", data={"amount_minor": "12000"})),
            "poison-string",
        ),
        _malformed(
            "float-amount",
            _json(_envelope("poison-float", "poison-float", data={"amount_minor": 120.5})),
            "poison-float",
        ),
        _malformed(
            "unknown-type",
            _json(_envelope("poison-unknown-type", "poison-unknown", type="refund.cancelled")),
            "poison-unknown-type",
        ),
        *([_malformed("control-character-id", control)] if ids_are_checked(control) else []),
        Poison(
            "misrouted",
            _json(misrouted),
            "poison-misrouted-not-its-key",
            frozenset({"misrouted"}),
            event_id="poison-misrouted",
        ),
        Poison(
            "no-user-id",
            _json(unsigned),
            "poison-no-user",
            frozenset({"unauthorized_producer"}),
            user_id=None,
            event_id="poison-no-user",
        ),
    ]
