"""The contract as documents: JSON Schema of every message and an AsyncAPI 3.0 description.

Generated from the pydantic models, so the documents cannot drift from the code; the committed
copies in `messages/schemas/` are checked against a fresh rendering (`recourse schema --check`).
Layout, flat so that the package data glob ships every file:

    schemas/event.<type>.json          one inbound envelope (milestone.funded, deadline.tick...)
    schemas/notification.<type>.json   one notification (refund.completed, event.rejected...)
    schemas/asyncapi.yaml              queues, exchange, operations; $refs the files above
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from pydantic import BaseModel, create_model

from messages.inbound import INBOUND_EVENTS, event_type_of
from messages.notifications import NOTIFICATION_DATA, Notification, ReasonCode
from messages.transport import (
    EVENT_ACTOR,
    EVENTS_QUEUE,
    NOTIFICATIONS_EXCHANGE,
    PERSISTENT,
    TICK_ACTOR,
    TICK_TYPE,
    TICKS_QUEUE,
    dead_letter_queue,
    delay_queue,
    queue_arguments,
)

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI_FILE = "asyncapi.yaml"
JSON_SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
"""Draft 07, the base of AsyncAPI's own schema format, so the files can be embedded in
asyncapi.yaml as they are; the models use nothing a later draft would be needed for."""
CONTRACT_VERSION = "1.0.0"
"""The AsyncAPI `info.version`: follows the envelope's `schema_version` (1), not the package."""

DRAMATIQ_DEFAULT_DEAD_MESSAGE_TTL_MS = 86400000 * 7
"""Dramatiq's default `.XQ` TTL; the document shows the default so that it does not depend on
the environment it was generated in."""

_GENERATED_PATTERN = re.compile(r"^(event|notification)\..+\.json$")


def event_schema_file(event_type: str) -> str:
    return f"event.{event_type}.json"


def notification_schema_file(notification_type: str) -> str:
    return f"notification.{notification_type}.json"


def _camel(dotted: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", dotted))


def _notification_model(notification_type: str) -> type[BaseModel]:
    """The notification envelope with `type` pinned and `data` of that type's model."""
    pinned = cast(Any, Literal)[notification_type]
    model: type[BaseModel] = create_model(
        f"{_camel(notification_type)}Notification",
        __base__=Notification,
        __doc__=f"The `{notification_type}` notification.",
        type=(pinned, ...),
        data=(NOTIFICATION_DATA[notification_type], ...),
    )
    return model


INTEGER_COMMENT = (
    "Every integer is written without a fraction or an exponent: the engine refuses 1.0 or 1e3 "
    "where an integer is asked, though JSON Schema (draft 6 and later) counts 1.0 as an "
    "integer. Amounts are at most 10^15. The body is at most 256 KiB, nests at most 32 levels "
    "and repeats no key in an object, which a validator of the decoded document cannot see."
)
"""What the schema cannot say in its own keywords: the one difference between a validator's
verdict and the engine's on a decoded document (tests/unit/test_schema_agreement.py)."""


def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation", ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", None)
    if definitions:
        schema["definitions"] = definitions
    return {"$schema": JSON_SCHEMA_DIALECT, "$comment": INTEGER_COMMENT, **schema}


def _dump_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, so the prose in the document stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _represent_str)


def _dump_yaml(document: dict[str, Any]) -> str:
    text: str = yaml.dump(
        document,
        Dumper=_BlockStyleDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return text


_OVERVIEW = """\
Refund, escrow and dispute engine for freelance marketplaces: upstream services send events,
the engine keeps a double-entry ledger and emits notifications. This document describes the
engine: it receives on the two queues and sends on the exchange. Message payloads $ref the
JSON Schema files beside this one (event.<type>.json, notification.<type>.json).
"""

_WIRE_FORMAT = f"""\
Inbound events travel as Dramatiq messages, so that the engine's workers (Dramatiq actors) can
consume them; a service in any language can publish them with a plain AMQP 0-9-1 client:

1. Declare the queues, durable, with exactly these arguments (RabbitMQ refuses a declaration
   whose arguments differ from the existing queue's with PRECONDITION_FAILED):
   - `{EVENTS_QUEUE}` and `{delay_queue(EVENTS_QUEUE)}`: `x-dead-letter-exchange: ""`,
     `x-dead-letter-routing-key: {dead_letter_queue(EVENTS_QUEUE)}`
   - `{dead_letter_queue(EVENTS_QUEUE)}`: `x-message-ttl: {DRAMATIQ_DEFAULT_DEAD_MESSAGE_TTL_MS}`
     (Dramatiq's default, 7 days)
   - the same three for `{TICKS_QUEUE}` with its own names.
   Declaring is idempotent; declare on every new channel.
2. Turn on publisher confirms (`confirm.select`) and publish to the default exchange `""`
   with routing key = the queue name, `mandatory` set, `delivery_mode` {PERSISTENT}
   (persistent), `content_type` `application/json`.
3. The body is UTF-8 JSON of one object with exactly these seven fields:
   `queue_name` (the queue), `actor_name` (`{EVENT_ACTOR}` on `{EVENTS_QUEUE}`,
   `{TICK_ACTOR}` on `{TICKS_QUEUE}`), `args` (an array holding one element: the envelope),
   `kwargs` (`{{}}`), `options` (`{{}}`), `message_id` (a fresh UUID4 string) and
   `message_timestamp` (milliseconds since the Unix epoch, an integer). Example:
   `{{"queue_name":"{EVENTS_QUEUE}","actor_name":"{EVENT_ACTOR}","args":[{{"event_id":"evt-7f3a",
   "type":"contract.closed","occurred_at":"2026-03-02T10:00:00Z","schema_version":1,
   "data":{{"contract_id":"c1"}}}}],"kwargs":{{}},"options":{{}},
   "message_id":"0b6f8e0e-4c59-4d1e-9d59-1f0c1e8f1a2b","message_timestamp":1772445600000}}`
4. Wait for the broker's ack. On a nack, a return or a dropped connection, publish the same
   body again: duplicates are dropped by `event_id`, so at-least-once is safe.

A body that is not such a message goes straight to `{dead_letter_queue(EVENTS_QUEUE)}` without
being read; an envelope that breaks the contract is dead-lettered with the field at fault.
"""

_NOTIFICATIONS = f"""\
Outbound notifications, published after the ledger change that caused each one commits, to
the durable topic exchange `{NOTIFICATIONS_EXCHANGE}` with the notification `type` as routing
key (`refund.completed`, `dispute.*`, `#` for all). Bind a queue of your own to it. Bodies are
plain JSON (not Dramatiq messages). Delivery is at least once: drop a `notification_id` you
have already handled.
"""


def _amqp_queue(name: str) -> dict[str, Any]:
    return {
        "is": "queue",
        "queue": {
            "name": name,
            "durable": True,
            "exclusive": False,
            "autoDelete": False,
            "vhost": "/",
        },
        "bindingVersion": "0.3.0",
    }


def _dramatiq_message(queue: str, actor: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            f"A Dramatiq message for the actor `{actor}` whose one positional argument is the "
            "envelope."
        ),
        "additionalProperties": False,
        "required": [
            "queue_name",
            "actor_name",
            "args",
            "kwargs",
            "options",
            "message_id",
            "message_timestamp",
        ],
        "properties": {
            "queue_name": {"type": "string", "const": queue},
            "actor_name": {"type": "string", "const": actor},
            "args": {"type": "array", "minItems": 1, "maxItems": 1},
            "kwargs": {"type": "object", "maxProperties": 0},
            "options": {
                "type": "object",
                "description": "Send {}. Dramatiq's middleware adds keys on retries.",
            },
            "message_id": {
                "type": "string",
                "minLength": 1,
                "description": "Unique per message; Dramatiq makes a UUID4.",
            },
            "message_timestamp": {
                "type": "integer",
                "minimum": 0,
                "description": "When the message was first sent, in ms since the Unix epoch.",
            },
        },
    }


def _dramatiq_payload(base: str, envelope_file: str) -> dict[str, Any]:
    return {
        "allOf": [
            {"$ref": f"#/components/schemas/{base}"},
            {"properties": {"args": {"items": {"$ref": f"./{envelope_file}"}}}},
        ]
    }


def _summary(model: type[BaseModel]) -> dict[str, str]:
    doc = (model.__doc__ or "").strip()
    return {"summary": doc} if doc else {}


def _asyncapi() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    event_refs: dict[str, Any] = {}
    tick_refs: dict[str, Any] = {}
    for model in INBOUND_EVENTS:
        event_type = event_type_of(model)
        key = f"event.{event_type}"
        base = "TickMessage" if event_type == TICK_TYPE else "EventMessage"
        data_model = model.model_fields["data"].annotation
        if not (isinstance(data_model, type) and issubclass(data_model, BaseModel)):
            raise TypeError(f"{model.__name__}.data is not a pydantic model")
        messages[key] = {
            "name": event_type,
            "title": f"{event_type} event",
            **_summary(data_model),
            "contentType": "application/json",
            "payload": _dramatiq_payload(base, event_schema_file(event_type)),
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        }
        refs = tick_refs if event_type == TICK_TYPE else event_refs
        refs[key] = {"$ref": f"#/components/messages/{key}"}

    notification_refs: dict[str, Any] = {}
    for notification_type in sorted(NOTIFICATION_DATA):
        key = f"notification.{notification_type}"
        messages[key] = {
            "name": notification_type,
            "title": f"{notification_type} notification",
            **_summary(NOTIFICATION_DATA[notification_type]),
            "contentType": "application/json",
            "payload": {"$ref": f"./{notification_schema_file(notification_type)}"},
            "bindings": {"amqp": {"messageType": notification_type, "bindingVersion": "0.3.0"}},
            "x-amqp-routing-key": notification_type,
        }
        notification_refs[key] = {"$ref": f"#/components/messages/{key}"}

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Recourse",
            "version": CONTRACT_VERSION,
            "description": _OVERVIEW + "\n" + _WIRE_FORMAT,
            "license": {
                "name": "Apache-2.0",
                "url": "https://www.apache.org/licenses/LICENSE-2.0",
            },
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The broker of BROKER_URL (amqp://user:pass@host:5672/vhost).",
            }
        },
        "channels": {
            "events": {
                "address": EVENTS_QUEUE,
                "title": "Inbound events",
                "description": (
                    f"Every inbound event except `{TICK_TYPE}`, for the Dramatiq actor "
                    f"`{EVENT_ACTOR}`. Queue arguments: "
                    f"{json.dumps(queue_arguments(EVENTS_QUEUE), sort_keys=True)}."
                ),
                "messages": event_refs,
                "bindings": {"amqp": _amqp_queue(EVENTS_QUEUE)},
            },
            "ticks": {
                "address": TICKS_QUEUE,
                "title": "Deadline ticks",
                "description": (
                    f"`{TICK_TYPE}` only, for the Dramatiq actor `{TICK_ACTOR}`, on a queue "
                    "of its own so that a backlog of events never delays deadlines. Queue "
                    f"arguments: {json.dumps(queue_arguments(TICKS_QUEUE), sort_keys=True)}."
                ),
                "messages": tick_refs,
                "bindings": {"amqp": _amqp_queue(TICKS_QUEUE)},
            },
            "notifications": {
                "address": NOTIFICATIONS_EXCHANGE,
                "title": "Notifications",
                "description": _NOTIFICATIONS,
                "messages": notification_refs,
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": NOTIFICATIONS_EXCHANGE,
                            "type": "topic",
                            "durable": True,
                            "autoDelete": False,
                            "vhost": "/",
                        },
                        "bindingVersion": "0.3.0",
                    }
                },
            },
        },
        "operations": {
            "receiveEvent": {
                "action": "receive",
                "channel": {"$ref": "#/channels/events"},
                "title": "Handle an inbound event",
                "summary": (
                    "Upstream services publish here (the opposite action); the engine "
                    "applies each event once, in one transaction, then acknowledges it."
                ),
                "messages": [{"$ref": f"#/channels/events/messages/{key}"} for key in event_refs],
                "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
            },
            "receiveTick": {
                "action": "receive",
                "channel": {"$ref": "#/channels/ticks"},
                "title": "Fire due deadlines",
                "summary": "The scheduler publishes a tick every minute; deadlines due by "
                "its `occurred_at` fire in due order.",
                "messages": [{"$ref": f"#/channels/ticks/messages/{key}"} for key in tick_refs],
                "bindings": {"amqp": {"ack": True, "bindingVersion": "0.3.0"}},
            },
            "sendNotification": {
                "action": "send",
                "channel": {"$ref": "#/channels/notifications"},
                "title": "Tell the parties",
                "summary": "The outbox relay publishes each committed notification with "
                "publisher confirms; routing key = `type`.",
                "messages": [
                    {"$ref": f"#/channels/notifications/messages/{key}"}
                    for key in notification_refs
                ],
                "bindings": {
                    "amqp": {"deliveryMode": PERSISTENT, "bindingVersion": "0.3.0"},
                },
            },
        },
        "components": {
            "messages": messages,
            "schemas": {
                "EventMessage": _dramatiq_message(EVENTS_QUEUE, EVENT_ACTOR),
                "TickMessage": _dramatiq_message(TICKS_QUEUE, TICK_ACTOR),
                "ReasonCode": {
                    "type": "string",
                    "description": "Why the engine refused a request.",
                    "enum": list(cast(Any, ReasonCode).__args__),
                },
            },
        },
    }


def render() -> dict[str, str]:
    """Every generated file, by its name inside the schemas directory, with its content."""
    files: dict[str, str] = {}
    for model in INBOUND_EVENTS:
        name = event_schema_file(event_type_of(model))
        files[name] = _dump_json(_json_schema(model))
    for notification_type in sorted(NOTIFICATION_DATA):
        name = notification_schema_file(notification_type)
        files[name] = _dump_json(_json_schema(_notification_model(notification_type)))
    files[ASYNCAPI_FILE] = _dump_yaml(_asyncapi())
    return dict(sorted(files.items()))


def _stale(directory: Path, expected: dict[str, str]) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted(
        path.name
        for path in directory.iterdir()
        if _GENERATED_PATTERN.match(path.name) and path.name not in expected
    )


def differences(directory: Path = SCHEMA_DIR) -> list[str]:
    """What is out of date in `directory`, one line a file; empty when it matches the code."""
    expected = render()
    problems: list[str] = []
    for name, content in expected.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{name}: differs from the models")
    problems.extend(f"{name}: no longer generated" for name in _stale(directory, expected))
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Bring `directory` up to date; return the names of the files written or removed."""
    expected = render()
    directory.mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for name, content in expected.items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8", newline="\n")
            changed.append(name)
    for name in _stale(directory, expected):
        (directory / name).unlink()
        changed.append(name)
    return changed
