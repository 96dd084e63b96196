"""From a raw body to a typed message: the registry of `type` to model, and the readers.

The readers turn every pydantic error into `MalformedMessage` with dotted field paths, so the
dead-letter reason names the field (`data.amount_minor`) and never leaks pydantic internals.
"""

from __future__ import annotations

import json
import re
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

MAX_DEPTH = 32
"""How deeply a body may nest objects and arrays (the envelope itself is level 1)."""

# A string literal of JSON (escapes included), and the brackets outside of them.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


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


def _too_large(raw: bytes | bytearray | str) -> bool:
    if len(raw) > MAX_BODY_BYTES:
        return True
    # A character takes at most 4 bytes of UTF-8: only a long text needs encoding to be sure.
    return (
        isinstance(raw, str)
        and len(raw) * 4 > MAX_BODY_BYTES
        and _utf8_size(raw) > (MAX_BODY_BYTES)
    )


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _text_depth(text: str) -> int:
    """How deeply the JSON text nests, read from its brackets before any tree is built.

    The decoder recurses once per level, so a body of ten thousand `[` would exhaust Python's
    stack before any limit on the decoded tree could be checked.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        # Every event of the contract: too few brackets to nest too deeply.
        return 0
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = deepest = 0
    for bracket in brackets:
        if bracket in "{[":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _tree_depth(tree: object) -> int:
    """How deeply a decoded body nests, walked with a stack of its own (no recursion)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _too_deep() -> MalformedMessage:
    return MalformedMessage([("body", f"nests deeper than {MAX_DEPTH} levels")])


def _as_mapping(raw: object) -> Mapping[str, Any]:
    if isinstance(raw, bytes | bytearray | str):
        if _too_large(raw):
            raise MalformedMessage([("body", f"is larger than {MAX_BODY_BYTES} bytes")])
        try:
            if not isinstance(raw, str):
                # As `json.loads` reads bytes: UTF-8, -16 or -32, told apart by their first bytes.
                raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
            elif raw.startswith("\ufeff"):
                # `json.loads` refuses text that starts with a byte order mark, and says why.
                raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage([("body", f"is not valid JSON ({exc})")]) from None
        if _text_depth(raw) > MAX_DEPTH:
            raise _too_deep()
        try:
            raw = _DECODER.decode(raw)
        except ValueError as exc:
            raise MalformedMessage([("body", f"is not valid JSON ({exc})")]) from None
    elif _tree_depth(raw) > MAX_DEPTH:
        raise _too_deep()
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
