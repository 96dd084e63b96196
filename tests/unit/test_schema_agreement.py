"""The generated JSON Schema and the models give the same verdict on any envelope.

Hypothesis builds envelopes of every inbound type, valid ones and ones mutated where the
Limits of MESSAGES.md bite (floats, ids with a carriage return, a line separator, a space or a
Cyrillic letter, times without seconds or in the years 0001 and 3000, huge amounts, overlong
reasons, missing and extra fields), and requires `parse_event` and a third-party validator
(`jsonschema`, on the committed files) to accept and refuse the same ones.

Known differences, each written down in the schema itself and tested on its own below:

- An integral float (`1.0`, `1e3`) where an integer is asked: JSON Schema (draft 6 and later)
  counts it as an integer, the engine refuses it. No keyword of the language tells `1.0` from
  `1` in a decoded document, so the schema says it in its `$comment`.
- `period_start` must be a Monday: the schema checks the date's shape and that it exists, and
  says the rest in the field's description, since no pattern tells the weekday.

What a validator of a decoded document cannot see at all (repeated keys, nesting depth, body
size, NaN) is tested on the reader itself in test_messages.py.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messages import MalformedMessage, parse_event
from messages.schema import SCHEMA_DIR, event_schema_file
from tests.unit.test_messages import VALID_DATA, envelope

VALIDATORS = {
    type_: jsonschema.Draft7Validator(
        json.loads((SCHEMA_DIR / event_schema_file(type_)).read_text("utf-8"))
    )
    for type_ in VALID_DATA
}

Path = tuple[str | int, ...]

ODD_IDS = [
    "",
    "x" * 128,
    "x" * 129,
    "evt-1\r",
    "evt-1\n",
    "evt\u20281",
    "evt 1",
    " evt-1",
    "evt-\u0441",
    "evt-\x7f",
    "evt-\x00",
    "~!{}[]",
]
ODD_TIMES = [
    "2026-03-02T10:00:00Z",
    "2026-03-02T10:00Z",
    "2026-03-02T10:00:00",
    "0001-01-01T00:00:00Z",
    "3000-01-01T00:00:00Z",
    "2999-12-31T23:59:59+14:00",
    "2026-02-29T10:00:00Z",
    "2024-02-29T10:00:00Z",
    "2100-02-29T10:00:00Z",
    "2026-03-02T10:00:00.5Z",
    "2026-03-02T10:00:00.1234567Z",
    "2026-03-02 10:00:00Z",
    "2026-03-02T10:00:00z",
    "2026-03-02T10:00:00Z\n",
    "2026-03-02T10:00:00+0100",
    "2026-03-02",
    "2026-13-02",
    "2026-03-09",
    "2026-03-32",
]
ODD_NUMBERS: list[object] = [
    0,
    1,
    -1,
    10**15,
    10**15 + 1,
    2**63,
    0.5,
    -0.0,
    1e20,
    True,
    False,
]
ODD_TEXTS = [
    "x" * 2000,
    "x" * 2001,
    "x" * 10_000,
    "x" * 10_001,
    "line\nfeed",
    "tab\there",
    "cr\r\nlf",
    "bell\x07",
    "next\x85line",
    "Zoë's логотип",
    "ends with a line feed\n",
    "https://files.example.com/a.pdf",
    "http://files.example.com/a.pdf",
    "application/pdf",
    "a" * 64,
    "A" * 64,
    "fixed",
    "partial_refund",
    "client",
    "USD",
]


def _values() -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from(ODD_IDS),
        st.sampled_from(ODD_TIMES),
        st.sampled_from(ODD_NUMBERS),
        st.sampled_from(ODD_TEXTS),
        st.integers(min_value=-(2**64), max_value=2**64),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x3000), max_size=130),
        st.none(),
        st.just([]),
        st.just({}),
    )


def _paths(node: object, prefix: Path = ()) -> list[Path]:
    found: list[Path] = []
    if isinstance(node, dict):
        for key, child in node.items():
            found.append((*prefix, key))
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found.append((*prefix, index))
            found.extend(_paths(child, (*prefix, index)))
    return found


def _parent(body: dict[str, Any], path: Path) -> Any:
    node: Any = body
    for part in path[:-1]:
        node = node[part]
    return node


@st.composite
def envelopes(draw: st.DrawFn) -> dict[str, Any]:
    type_ = draw(st.sampled_from(sorted(VALID_DATA)))
    body = envelope(type_)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        # Never `type`: the schema of another type would judge the body.
        path = draw(st.sampled_from([p for p in _paths(body) if p != ("type",)]))
        parent = _parent(body, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "extra"]))
        if action == "replace":
            parent[path[-1]] = draw(_values())
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent["extra_field"] = draw(_values())
    return body


def _integral_floats(node: object) -> bool:
    if isinstance(node, float):
        return node.is_integer()
    if isinstance(node, dict):
        return any(_integral_floats(child) for child in node.values())
    if isinstance(node, list):
        return any(_integral_floats(child) for child in node)
    return False


def _not_a_monday(body: dict[str, Any]) -> bool:
    data = body.get("data")
    period_start = data.get("period_start") if isinstance(data, dict) else None
    try:
        return isinstance(period_start, str) and date.fromisoformat(period_start).weekday() != 0
    except ValueError:
        return False


def engine_accepts(body: dict[str, Any]) -> bool:
    try:
        parse_event(copy.deepcopy(body))
    except MalformedMessage:
        return False
    return True


def schema_accepts(body: dict[str, Any]) -> bool:
    return bool(VALIDATORS[body["type"]].is_valid(body))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes())
def test_the_schema_and_the_models_give_the_same_verdict(body: dict[str, Any]) -> None:
    engine, schema = engine_accepts(body), schema_accepts(body)

    if engine != schema:
        # Only the known differences, and only the way round each is known to go.
        assert not engine and schema, body
        assert _integral_floats(body) or _not_a_monday(body), body


@pytest.mark.parametrize("type_", sorted(VALID_DATA))
def test_every_valid_example_is_valid_for_both(type_: str) -> None:
    body = envelope(type_)

    assert engine_accepts(body)
    assert schema_accepts(body)


@pytest.mark.parametrize("value", [50000.0, 5e4])
def test_an_integral_float_is_the_known_difference(value: float) -> None:
    body = envelope("milestone.funded")
    body["data"]["amount_minor"] = value
    schema = json.loads((SCHEMA_DIR / event_schema_file("milestone.funded")).read_text("utf-8"))

    assert not engine_accepts(body)
    assert schema_accepts(body)
    assert "1.0" in schema["$comment"]


def test_a_date_that_is_not_a_monday_is_the_other_known_difference() -> None:
    body = envelope("hourly.invoice_paid")
    body["data"]["period_start"] = "2026-03-03"
    schema = json.loads((SCHEMA_DIR / event_schema_file("hourly.invoice_paid")).read_text("utf-8"))

    assert not engine_accepts(body)
    assert schema_accepts(body)
    assert (
        "Monday"
        in schema["definitions"]["HourlyInvoicePaid"]["properties"]["period_start"]["description"]
    )


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("event_id",), "evt-1\n"),
        (("event_id",), "evt-1\r"),
        (("event_id",), "evt\u20281"),
        (("event_id",), "evt 1"),
        (("event_id",), "evt-\u0441"),
        (("occurred_at",), "2026-03-02T10:00Z"),
        (("occurred_at",), "0001-01-01T00:00:00Z"),
        (("occurred_at",), "3000-01-01T00:00:00Z"),
        (("occurred_at",), "2026-03-02T10:00:00Z\n"),
        (("data", "amount_minor"), 10**15 + 1),
        (("data", "reason"), "x" * 2001),
        (("data", "reason"), "ends with a line feed\n"),
    ],
)
def test_both_refuse_what_the_limits_refuse(path: Path, value: object) -> None:
    body = envelope("refund.requested")
    _parent(body, path)[path[-1]] = value

    assert (engine_accepts(body), schema_accepts(body)) == (False, False)
