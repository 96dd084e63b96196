"""`recourse publish`: every well-formed line is sent, every malformed one is named by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import pytest
from typer.testing import CliRunner

import messages.publisher
from messages import Envelope, PublishError
from workers.cli import app

BROKER = "amqp://guest:guest@broker.invalid:5672/"


def line(number: int, **changes: Any) -> str:
    body: dict[str, Any] = {
        "event_id": f"evt-{number}",
        "type": "contract.closed",
        "occurred_at": "2026-03-02T10:00:00Z",
        "schema_version": 1,
        "data": {"contract_id": "c1"},
    }
    body.update(changes)
    return json.dumps(body)


class FakePublisher:
    instances: ClassVar[list[FakePublisher]] = []
    fail_after: ClassVar[int | None] = None

    def __init__(self, url: str) -> None:
        self.url = url
        self.user = url.split("//", 1)[1].split(":", 1)[0]
        self.sent: list[Envelope] = []
        self.closed = False
        FakePublisher.instances.append(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    def publish(self, envelope: Envelope) -> str:
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise PublishError("broker did not confirm the message after 5 attempts")
        self.sent.append(envelope)
        return "m"


@pytest.fixture
def publisher(monkeypatch: pytest.MonkeyPatch) -> type[FakePublisher]:
    FakePublisher.instances = []
    FakePublisher.fail_after = None
    monkeypatch.setattr(messages.publisher, "EventPublisher", FakePublisher)
    monkeypatch.setenv("BROKER_URL", BROKER)
    return FakePublisher


def sent_ids(publisher: type[FakePublisher]) -> list[str]:
    return [event.event_id for instance in publisher.instances for event in instance.sent]


def test_every_line_of_a_clean_file_is_sent(publisher: type[FakePublisher], tmp_path: Path) -> None:
    file = tmp_path / "events.jsonl"
    file.write_text("\n".join(line(n) for n in range(1, 4)) + "\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["publish", str(file)])

    assert result.exit_code == 0, result.output
    assert "sent 3 events to refunds.events" in result.output
    assert sent_ids(publisher) == ["evt-1", "evt-2", "evt-3"]
    assert publisher.instances[0].url == BROKER
    assert publisher.instances[0].closed


def test_malformed_lines_are_named_not_sent_and_fail_the_command(
    publisher: type[FakePublisher], tmp_path: Path
) -> None:
    file = tmp_path / "events.jsonl"
    lines = [
        line(1),
        line(2, occurred_at="2026-03-02T10:00:00"),
        "{not json",
        "",
        line(5, type="contract.reopened"),
        line(6),
    ]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = CliRunner().invoke(app, ["publish", str(file)])

    assert result.exit_code == 1
    assert sent_ids(publisher) == ["evt-1", "evt-6"]
    assert "line 2: occurred_at:" in result.output
    assert "line 3: body:" in result.output
    assert "line 4" not in result.output
    assert "line 5: type:" in result.output
    assert "sent 2 events to refunds.events; 3 malformed lines not sent" in result.output


def test_a_line_that_is_not_utf8_is_one_malformed_line(
    publisher: type[FakePublisher], tmp_path: Path
) -> None:
    file = tmp_path / "events.jsonl"
    file.write_bytes(line(1).encode() + b"\n\xff\xfe\n" + line(3).encode() + b"\n")

    result = CliRunner().invoke(app, ["publish", str(file)])

    assert result.exit_code == 1
    assert "line 2: body:" in result.output
    assert sent_ids(publisher) == ["evt-1", "evt-3"]


def test_dash_reads_standard_input(publisher: type[FakePublisher]) -> None:
    result = CliRunner().invoke(app, ["publish", "-"], input=line(1) + "\n" + line(2) + "\n")

    assert result.exit_code == 0, result.output
    assert sent_ids(publisher) == ["evt-1", "evt-2"]


def test_the_broker_option_overrides_broker_url(publisher: type[FakePublisher]) -> None:
    other = "amqp://u:p@elsewhere:5672/v"

    result = CliRunner().invoke(app, ["publish", "-", "--broker", other], input=line(1))

    assert result.exit_code == 0, result.output
    assert publisher.instances[0].url == other


def test_without_a_broker_nothing_is_read(
    publisher: type[FakePublisher], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_URL")

    result = CliRunner().invoke(app, ["publish", "-"], input=line(1))

    assert result.exit_code == 2
    assert "error: BROKER_URL is not set; publish needs RabbitMQ" in result.output
    assert publisher.instances == []


def test_a_broker_that_stops_confirming_fails_with_the_count_sent(
    publisher: type[FakePublisher],
) -> None:
    publisher.fail_after = 1

    result = CliRunner().invoke(app, ["publish", "-"], input=line(1) + "\n" + line(2) + "\n")

    assert result.exit_code == 1
    assert (
        "error: the broker did not take the message: line 2 not confirmed, stopped after 1 sent"
        in result.output
    )


def test_json_prints_one_summary_with_the_refused_lines(
    publisher: type[FakePublisher],
) -> None:
    text = line(1) + "\n" + line(2, occurred_at="2026-03-02T10:00:00") + "\n" + line(3) + "\n"

    result = CliRunner().invoke(app, ["publish", "-", "--json"], input=text)

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["sent"] == 2
    assert summary["user"] == "guest"
    assert summary["error"] is None
    [refused] = summary["refused"]
    assert refused["line"] == 2
    assert refused["problems"][0][0] == "occurred_at"


def test_json_names_the_line_the_broker_did_not_confirm(publisher: type[FakePublisher]) -> None:
    publisher.fail_after = 1

    result = CliRunner().invoke(
        app, ["publish", "-", "--json"], input=line(1) + "\n" + line(2) + "\n"
    )

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["sent"] == 1
    assert summary["error"].startswith("line 2 not confirmed")


def tick_line(number: int) -> str:
    return line(number, event_id=f"tick-{number}", type="deadline.tick", data={})


def test_tick_lines_are_published_like_the_others(publisher: type[FakePublisher]) -> None:
    result = CliRunner().invoke(app, ["publish", "-"], input=line(1) + "\n" + tick_line(2))

    assert result.exit_code == 0, result.output
    assert sent_ids(publisher) == ["evt-1", "tick-2"]
    assert "warning" not in result.output


def test_ticks_sent_as_another_user_than_the_engines_are_warned_about(
    publisher: type[FakePublisher],
) -> None:
    other = "amqp://contracts:p@broker.invalid:5672/"

    result = CliRunner().invoke(
        app, ["publish", "-", "--broker", other, "--json"], input=tick_line(1) + "\n" + line(2)
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["user"] == "contracts"
    assert summary["ticks_not_from_engine_user"] == [1]
    assert sent_ids(publisher) == ["tick-1", "evt-2"]


def test_ticks_warning_in_text(publisher: type[FakePublisher]) -> None:
    other = "amqp://contracts:p@broker.invalid:5672/"

    result = CliRunner().invoke(app, ["publish", "-", "--broker", other], input=tick_line(1))

    assert result.exit_code == 0, result.output
    assert "warning: 1 tick lines sent as 'contracts', not as the engine's user 'guest'" in (
        result.output
    )
