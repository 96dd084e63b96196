"""The committed JSON Schema and AsyncAPI documents are what the models generate, and the
AsyncAPI document holds together: every channel, operation and reference of the contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from messages import EVENT_MODELS
from messages.notifications import NOTIFICATION_DATA
from messages.schema import (
    ASYNCAPI_FILE,
    JSON_SCHEMA_DIALECT,
    SCHEMA_DIR,
    differences,
    event_schema_file,
    notification_schema_file,
    render,
    write,
)
from messages.transport import EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE
from workers.cli import app


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SCHEMA_DIR / ASYNCAPI_FILE).read_text("utf-8"))
    return document


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_the_committed_documents_are_what_the_models_generate() -> None:
    assert differences(SCHEMA_DIR) == [], "run `recourse schema` and commit messages/schemas"


def test_rendering_is_deterministic_and_ends_every_file_with_a_newline() -> None:
    first, second = render(), render()

    assert first == second
    assert all(
        content.endswith("\n") and not content.endswith("\n\n") for content in first.values()
    )


def test_there_is_one_schema_per_inbound_type_and_per_notification_type() -> None:
    expected = {event_schema_file(t) for t in EVENT_MODELS}
    expected |= {notification_schema_file(t) for t in NOTIFICATION_DATA}

    assert set(render()) == expected | {ASYNCAPI_FILE}


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_an_event_schema_pins_its_type_and_refuses_extra_fields(event_type: str) -> None:
    schema = json.loads((SCHEMA_DIR / event_schema_file(event_type)).read_text("utf-8"))

    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["properties"]["type"]["const"] == event_type
    assert schema["properties"]["schema_version"]["const"] == 1
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"event_id", "type", "occurred_at", "schema_version", "data"}
    data = resolve(schema, schema["properties"]["data"]["$ref"])
    assert data["additionalProperties"] is False
    for ref in refs(schema):
        resolve(schema, ref)


def test_the_event_schema_refuses_naive_times_and_floats_as_the_models_do() -> None:
    schema = json.loads((SCHEMA_DIR / event_schema_file("milestone.funded")).read_text("utf-8"))
    occurred_at = schema["properties"]["occurred_at"]
    amount = resolve(schema, schema["properties"]["data"]["$ref"])["properties"]["amount_minor"]

    assert occurred_at["format"] == "date-time"
    assert "pattern" in occurred_at
    assert amount == {
        "exclusiveMinimum": 0,
        "maximum": 10**15,
        "title": "Amount Minor",
        "type": "integer",
    }


def test_the_dispute_schema_states_the_partial_refund_rule() -> None:
    schema = json.loads((SCHEMA_DIR / event_schema_file("dispute.resolved")).read_text("utf-8"))
    data = resolve(schema, schema["properties"]["data"]["$ref"])

    assert data["if"] == {"properties": {"outcome": {"const": "partial_refund"}}}
    assert data["then"]["required"] == ["refund_amount_minor"]


@pytest.mark.parametrize("notification_type", sorted(NOTIFICATION_DATA))
def test_a_notification_schema_pins_its_type_and_its_data(notification_type: str) -> None:
    file = SCHEMA_DIR / notification_schema_file(notification_type)
    schema = json.loads(file.read_text("utf-8"))

    assert schema["properties"]["type"]["const"] == notification_type
    data = resolve(schema, schema["properties"]["data"]["$ref"])
    assert set(data["properties"]) == set(NOTIFICATION_DATA[notification_type].model_fields)
    assert data["additionalProperties"] is False


def test_asyncapi_is_version_3_with_the_two_exchanges(asyncapi: dict[str, Any]) -> None:
    channels = asyncapi["channels"]

    assert asyncapi["asyncapi"] == "3.0.0"
    assert {c["address"] for c in channels.values()} == {EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE}
    for name, address in (("events", EVENTS_EXCHANGE), ("notifications", NOTIFICATIONS_EXCHANGE)):
        binding = channels[name]["bindings"]["amqp"]
        assert binding["is"] == "routingKey"
        assert binding["exchange"] == {
            "name": address,
            "type": "topic",
            "durable": True,
            "autoDelete": False,
            "vhost": "/",
        }


def test_asyncapi_operations_receive_events_and_send_notifications(
    asyncapi: dict[str, Any],
) -> None:
    actions = {
        resolve(asyncapi, op["channel"]["$ref"])["address"]: op["action"]
        for op in asyncapi["operations"].values()
    }

    assert actions == {EVENTS_EXCHANGE: "receive", NOTIFICATIONS_EXCHANGE: "send"}


def test_asyncapi_has_a_message_for_every_type_on_the_right_channel(
    asyncapi: dict[str, Any],
) -> None:
    def names(channel: str) -> set[str]:
        messages = asyncapi["channels"][channel]["messages"].values()
        return {resolve(asyncapi, m["$ref"])["name"] for m in messages}

    assert names("events") == set(EVENT_MODELS)
    assert names("notifications") == set(NOTIFICATION_DATA)


def test_asyncapi_spells_out_the_transport_of_messages_md(asyncapi: dict[str, Any]) -> None:
    """The envelope is the whole body: each event's payload is its JSON Schema, nothing around
    it, and the description names what a producer must set."""
    funded = asyncapi["components"]["messages"]["event.milestone.funded"]["payload"]

    assert funded == {"$ref": "./event.milestone.funded.json"}
    description = asyncapi["info"]["description"]
    for words in (
        "routing key = the envelope's ordering key",
        "user_id",
        "mandatory",
        "confirm.select",
        "misrouted",
        "unauthorized_producer",
    ):
        assert words in description


def test_every_reference_in_asyncapi_resolves(asyncapi: dict[str, Any]) -> None:
    for ref in refs(asyncapi):
        if ref.startswith("#/"):
            resolve(asyncapi, ref)
        else:
            assert (SCHEMA_DIR / ref).is_file(), ref


def test_differences_name_missing_changed_and_stale_files(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / event_schema_file("contract.closed")).unlink()
    (tmp_path / ASYNCAPI_FILE).write_text("asyncapi: 2.6.0\n", encoding="utf-8")
    (tmp_path / "event.contract.renamed.json").write_text("{}\n", encoding="utf-8")

    assert differences(tmp_path) == [
        "asyncapi.yaml: differs from the models",
        "event.contract.closed.json: missing",
        "event.contract.renamed.json: no longer generated",
    ]
    assert sorted(write(tmp_path)) == [
        "asyncapi.yaml",
        "event.contract.closed.json",
        "event.contract.renamed.json",
    ]
    assert differences(tmp_path) == []


def test_the_schema_command_writes_then_checks(tmp_path: Path) -> None:
    runner = CliRunner()

    written = runner.invoke(app, ["schema", "--dir", str(tmp_path)])
    clean = runner.invoke(app, ["schema", "--check", "--dir", str(tmp_path)])
    (tmp_path / notification_schema_file("refund.completed")).write_text("{}\n", "utf-8")
    dirty = runner.invoke(app, ["schema", "--check", "--dir", str(tmp_path)])

    assert written.exit_code == 0, written.output
    assert clean.exit_code == 0, clean.output
    assert dirty.exit_code == 1
    assert "notification.refund.completed.json: differs from the models" in dirty.output


def test_the_schema_check_passes_on_the_committed_files() -> None:
    result = CliRunner().invoke(app, ["schema", "--check"])

    assert result.exit_code == 0, result.output
