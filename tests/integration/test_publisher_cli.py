"""`recourse publish` against a real RabbitMQ: good lines reach `refunds.intake` through the
exchange in file order, under their ordering key and the publisher's user; bad ones do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pika
import pytest
from typer.testing import CliRunner

from messages.transport import INTAKE_QUEUE, declare_intake
from workers.cli import app

pytestmark = pytest.mark.rabbitmq


def envelope(event_id: str, type_: str, data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "type": type_,
            "occurred_at": "2026-03-02T10:00:00Z",
            "schema_version": 1,
            "data": data,
        }
    )


def test_publish_sends_good_lines_in_order_and_names_bad_ones(
    rabbit_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_URL", rabbit_url)
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    declare_intake(channel)
    file = tmp_path / "events.jsonl"
    lines = [
        envelope("evt-1", "contract.closed", {"contract_id": "c1"}),
        envelope("evt-2", "contract.closed", {"contract_id": "c1", "extra": True}),
        envelope("tick-1", "deadline.tick", {}),
        envelope("evt-3", "addon.started", {"addon_id": "a1"}),
    ]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    try:
        result = CliRunner().invoke(app, ["publish", str(file), "--json"])
        received = []
        while True:
            method, properties, body = channel.basic_get(queue=INTAKE_QUEUE, auto_ack=True)
            if method is None:
                break
            received.append((method.routing_key, properties.user_id, json.loads(body)["event_id"]))
    finally:
        connection.close()

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["sent"] == 3
    assert [refused["line"] for refused in summary["refused"]] == [2]
    assert summary["refused"][0]["problems"][0][0] == "data.extra"
    assert summary["ticks_not_from_engine_user"] == []
    assert received == [
        ("c1", "guest", "evt-1"),
        ("deadline.tick", "guest", "tick-1"),
        ("a1", "guest", "evt-3"),
    ]


def test_publish_before_the_engine_declared_the_exchange_is_a_one_line_error(
    rabbit_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_URL", rabbit_url)

    result = CliRunner().invoke(
        app, ["publish", "-"], input=envelope("evt-1", "contract.closed", {"contract_id": "c1"})
    )

    assert result.exit_code == 1
    assert "error: the broker did not take the message: line 1 not confirmed" in result.output
    assert "NOT_FOUND" in result.output
