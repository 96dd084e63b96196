"""`recourse health` and the DLQ commands' guard, without a broker."""

from __future__ import annotations

import json
from pathlib import Path

import pika.exceptions
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from workers.cli import app
from workers.database import make_engine
from workers.health import check_broker, check_database

runner = CliRunner()


def test_a_migrated_database_is_healthy(sqlite_engine: Engine) -> None:
    check = check_database(sqlite_engine)
    assert check.ok
    assert check.name == "database"


def test_a_database_without_the_schema_is_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    check = check_database(engine)
    engine.dispose()
    assert not check.ok
    assert "inbox" in check.detail


def test_the_embedded_broker_is_always_there() -> None:
    assert check_broker(None).ok


def test_an_unreachable_broker_fails_the_check() -> None:
    def refuse(parameters: object) -> pika.BlockingConnection:
        raise pika.exceptions.AMQPConnectionError("connection refused")

    check = check_broker("amqp://guest:guest@127.0.0.1:1/%2F", connection_factory=refuse)

    assert not check.ok
    assert "127.0.0.1:1" in check.detail


def test_the_health_command_exits_0_when_all_is_well(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["health", "--json"])

    assert result.exit_code == 0, result.output
    checks = [json.loads(line) for line in result.output.splitlines()]
    assert [(check["name"], check["ok"]) for check in checks] == [
        ("database", True),
        ("broker", True),
    ]


def test_the_health_command_exits_1_when_the_database_is_not_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["health"])

    assert result.exit_code == 1
    assert "FAIL database" in result.output


def test_the_dlq_commands_say_they_need_rabbitmq(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["dlq", "list"])

    assert result.exit_code == 2
    assert "BROKER_URL" in result.output


def test_dlq_retry_wants_ids_or_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@127.0.0.1:1/%2F")

    result = runner.invoke(app, ["dlq", "retry"])

    assert result.exit_code == 2
    assert "--all" in result.output


def test_an_unknown_dlq_queue_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROKER_URL", "amqp://guest:guest@127.0.0.1:1/%2F")

    result = runner.invoke(app, ["dlq", "purge", "--queue", "orders", "--yes"])

    assert result.exit_code == 2


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_a_separate_worker_or_scheduler_needs_rabbitmq(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, [command])

    assert result.exit_code == 2
    assert "recourse run" in result.output
