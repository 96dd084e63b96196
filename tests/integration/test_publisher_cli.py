"""`recourse publish` against a real RabbitMQ: good lines land on their queues, bad ones do not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pika
import pytest
from typer.testing import CliRunner

from messages.transport import EVENTS_QUEUE, TICKS_QUEUE
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


def test_publish_sends_good_lines_to_their_queues_and_names_bad_ones(
    rabbit_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BROKER_URL", rabbit_url)
    file = tmp_path / "events.jsonl"
    lines = [
        envelope("evt-1", "contract.closed", {"contract_id": "c1"}),
        envelope("evt-2", "contract.closed", {"contract_id": "c1", "extra": True}),
        envelope("tick-1", "deadline.tick", {}),
        envelope("evt-3", "addon.started", {"addon_id": "a1"}),
    ]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["publish", str(file)])

    assert result.exit_code == 1
    assert "line 2: data.extra:" in result.output
    assert "sent 3 events; 1 malformed line not sent" in result.output
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    try:
        channel = connection.channel()
        events = channel.queue_declare(queue=EVENTS_QUEUE, passive=True).method.message_count
        ticks = channel.queue_declare(queue=TICKS_QUEUE, passive=True).method.message_count
    finally:
        connection.close()
    assert (events, ticks) == (2, 1)
