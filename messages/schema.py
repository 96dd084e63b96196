"""The contract as documents: JSON Schema of every message and an AsyncAPI 3.0 description.

Generated from the pydantic models, so the documents cannot drift from the code; the committed
copies in `messages/schemas/` are checked against a fresh rendering (`recourse schema --check`).
Layout, flat so that the package data glob ships every file:

    schemas/event.<type>.json          one inbound envelope (milestone.funded, deadline.tick...)
    schemas/notification.<type>.json   one notification (refund.completed, event.rejected...)
    schemas/asyncapi.yaml              exchanges, operations; $refs the files above
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
from messages.transport import EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE, PERSISTENT, TICK_TYPE

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
engine: it receives on one exchange and sends on another. Message payloads $ref the
JSON Schema files beside this one (event.<type>.json, notification.<type>.json).
"""

_WIRE_FORMAT = f"""\
Inbound events are published, one envelope a message, to the durable topic exchange
`{EVENTS_EXCHANGE}`, which the engine declares; a service in any language publishes them with a
plain AMQP 0-9-1 client and never declares, binds or consumes anything:

1. Turn on publisher confirms (`confirm.select`).
2. Publish to `{EVENTS_EXCHANGE}` with routing key = the envelope's ordering key (its
   `contract_id`; for the types without one, the id MESSAGES.md names: `chargeback_id`,
   `payment_id`, `addon_id`, `user_id` or `cashout_id`), `mandatory` set, `delivery_mode`
   {PERSISTENT} (persistent), `content_type` `application/json`, `message_id` = the `event_id`,
   and `user_id` = your broker user (RabbitMQ refuses any other).
3. The body is the envelope itself, UTF-8 JSON, nothing around it.
4. Wait for the broker's ack. On a nack, a return or a dropped connection, publish the same
   body again: duplicates are dropped by `event_id`, so at-least-once is safe. Keep the events
   of one contract on one channel, in the order they happened.

Nothing else of the message is read. A body that is not an envelope is dead-lettered as
`malformed` naming the field, a type your user may not publish as `unauthorized_producer`, a
routing key other than the ordering key as `misrouted`. `{TICK_TYPE}` (routing key
`{TICK_TYPE}`) is published by the engine's own scheduler only.
"""

_NOTIFICATIONS = f"""\
Outbound notifications, published after the ledger change that caused each one commits, to
the durable topic exchange `{NOTIFICATIONS_EXCHANGE}` with the notification `type` as routing
key (`refund.completed`, `dispute.*`, `#` for all). Bind a queue of your own to it. Bodies are
plain JSON (not Dramatiq messages). Delivery is at least once: drop a `notification_id` you
have already handled.
"""


def _summary(model: type[BaseModel]) -> dict[str, str]:
    doc = (model.__doc__ or "").strip()
    return {"summary": doc} if doc else {}


def _asyncapi() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    event_refs: dict[str, Any] = {}
    for model in INBOUND_EVENTS:
        event_type = event_type_of(model)
        key = f"event.{event_type}"
        data_model = model.model_fields["data"].annotation
        if not (isinstance(data_model, type) and issubclass(data_model, BaseModel)):
            raise TypeError(f"{model.__name__}.data is not a pydantic model")
        messages[key] = {
            "name": event_type,
            "title": f"{event_type} event",
            **_summary(data_model),
            "contentType": "application/json",
            "payload": {"$ref": f"./{event_schema_file(event_type)}"},
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        }
        event_refs[key] = {"$ref": f"#/components/messages/{key}"}

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
                "address": EVENTS_EXCHANGE,
                "title": "Inbound events",
                "description": (
                    "Every inbound event, the envelope as the whole body, routing key = its "
                    f"ordering key (`{TICK_TYPE}` for ticks)."
                ),
                "messages": event_refs,
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": EVENTS_EXCHANGE,
                            "type": "topic",
                            "durable": True,
                            "autoDelete": False,
                            "vhost": "/",
                        },
                        "bindingVersion": "0.3.0",
                    }
                },
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
                    "applies each event once, in the order received per ordering key."
                ),
                "messages": [{"$ref": f"#/channels/events/messages/{key}"} for key in event_refs],
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
