"""From a raw body to a typed message: the registry of `type` to model, and the readers.

The readers turn every pydantic error into `MalformedMessage` with dotted field paths, so the
dead-letter reason names the field (`data.amount_minor`) and never leaks pydantic internals.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from messages.errors import MalformedMessage
from messages.inbound import INBOUND_EVENTS, Envelope, event_type_of
from messages.notifications import NOTIFICATION_DATA, Notification, NotificationData

EVENT_MODELS: dict[str, type[Envelope]] = {event_type_of(model): model for model in INBOUND_EVENTS}
"""`type` -> envelope model, for every inbound event of MESSAGES.md."""

MAX_BODY_BYTES = 256 * 1024
"""A body past this size is refused before it is parsed: no event of the contract needs it."""


class _NotStrictJson(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which are not JSON and no other language's reader takes.
    raise _NotStrictJson(f"{name} is not a JSON value")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Readers disagree on which copy of a repeated key wins, so such a body means different
    # things to the publisher and to us; its hash would also differ from the one it meant.
    result = dict(pairs)
    if len(result) != len(pairs):
        # Only a body with a repeated key gets here: the loop names it.
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _NotStrictJson(f"key {key!r} appears more than once")
            seen.add(key)
    return result


# One decoder for every body: `json.loads` with hooks builds a new one on each call, which costs
# about as much as decoding a small event.
_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicate_keys
)


def _as_mapping(raw: object) -> Mapping[str, Any]:
    if isinstance(raw, bytes | bytearray | str):
        if len(raw) > MAX_BODY_BYTES:
            raise MalformedMessage([("body", f"is larger than {MAX_BODY_BYTES} bytes")])
        try:
            if not isinstance(raw, str):
                # As `json.loads` reads bytes: UTF-8, -16 or -32, told apart by their first bytes.
                raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
            elif raw.startswith("\ufeff"):
                # `json.loads` refuses text that starts with a byte order mark, and says why.
                raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
            raw = _DECODER.decode(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage([("body", f"is not valid JSON ({exc})")]) from None
    if not isinstance(raw, Mapping):
        raise MalformedMessage([("body", "must be a JSON object")])
    return raw


def _problems(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in (*prefix, *item["loc"])) or "body"
        cause = item.get("ctx", {}).get("error")
        # For our own validators, the bare message, without pydantic's "Value error, " prefix.
        reason = str(cause) if item["type"] == "value_error" and cause is not None else item["msg"]
        problems.append((path, reason))
    return problems


def _validate(model: type[BaseModel], body: Mapping[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise MalformedMessage(_problems(exc)) from None


def parse_event(raw: object) -> Envelope:
    """Read an inbound envelope (bytes, text or a decoded mapping) into its typed model."""
    body = _as_mapping(raw)
    type_ = body.get("type")
    if not isinstance(type_, str):
        raise MalformedMessage([("type", "is required and must be a string")])
    model = EVENT_MODELS.get(type_)
    if model is None:
        raise MalformedMessage([("type", f"unknown event type {type_!r}")])
    result: Envelope = _validate(model, body)
    return result


def parse_notification(raw: object) -> Notification:
    """Read a notification body, checking `data` against the model of its `type`."""
    body = dict(_as_mapping(raw))
    type_ = body.get("type")
    if not isinstance(type_, str):
        raise MalformedMessage([("type", "is required and must be a string")])
    data_model = NOTIFICATION_DATA.get(type_)
    if data_model is None:
        raise MalformedMessage([("type", f"unknown notification type {type_!r}")])
    data: NotificationData = _validate_prefixed(data_model, body.get("data"), ("data",))
    body["data"] = data
    result: Notification = _validate(Notification, body)
    return result


def _validate_prefixed(model: type[BaseModel], value: object, prefix: tuple[str, ...]) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise MalformedMessage(_problems(exc, prefix)) from None
