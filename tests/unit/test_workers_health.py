"""`recourse health` without a broker: the database, the intake's backlog, and the broker and
worker checks against a fake pika connection."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pika.exceptions
import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from messages.transport import INTAKE_QUEUE
from workers.cli import app
from workers.database import make_engine
from workers.health import check_all, check_broker, check_database, check_intake
from workers.intake.tables import dead_letters, event_log, parked_keys

runner = CliRunner()
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
URL = "amqp://guest:guest@rabbit.invalid:5672/%2F"


def log_entry(engine: Engine, key: str, *, received_s_ago: float, status: str = "pending") -> None:
    at = NOW - timedelta(seconds=received_s_ago)
    with engine.begin() as conn:
        conn.execute(
            insert(event_log),
            {
                "kind": "event",
                "ordering_key": key,
                "partition": 0,
                "event_id": f"evt-{key}-{received_s_ago}",
                "event_type": "contract.closed",
                "occurred_at": at,
                "producer": "svc",
                "body": "{}",
                "received_at": at,
                "status": status,
            },
        )


def park(engine: Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(parked_keys),
            {
                "ordering_key": key,
                "partition": 0,
                "head_seq": 1,
                "reason": "unknown_subject",
                "attempts": 1,
                "first_failed_at": NOW,
                "retry_at": NOW,
                "last_error": "unknown contract",
            },
        )


def dead_letter(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(dead_letters),
            {
                "reason": "malformed",
                "problems": "[]",
                "body": "x",
                "body_bytes": 1,
                "received_at": NOW,
                "dead_at": NOW,
            },
        )


class FakeChannel:
    def __init__(self, declared: Any) -> None:
        self.declared = declared
        self.is_open = True
        self.asked: list[tuple[str, bool]] = []

    def queue_declare(self, queue: str, passive: bool = False) -> Any:
        self.asked.append((queue, passive))
        if isinstance(self.declared, Exception):
            self.is_open = False
            raise self.declared
        return SimpleNamespace(method=self.declared)

    def close(self) -> None:
        self.is_open = False


class FakeConnection:
    def __init__(self, declared: Any) -> None:
        self.channel_made = FakeChannel(declared)
        self.is_open = True

    def channel(self) -> FakeChannel:
        return self.channel_made

    def close(self) -> None:
        self.is_open = False


def broker_with(declared: Any) -> tuple[FakeConnection, Any]:
    connection = FakeConnection(declared)
    return connection, lambda parameters: connection


def test_a_migrated_database_is_healthy(sqlite_engine: Engine) -> None:
    check = check_database(sqlite_engine)
    assert (check.name, check.ok) == ("database", True)


def test_a_database_without_the_schema_is_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    check = check_database(engine)
    engine.dispose()
    assert not check.ok
    assert "no such table: inbox" in check.detail


def test_an_empty_intake_is_healthy(sqlite_engine: Engine) -> None:
    check = check_intake(sqlite_engine, now=NOW)

    assert check.ok
    assert check.facts["oldest_pending_seconds"] is None
    assert check.detail == "nothing waits to be applied (0 pending, 0 parked keys, 0 dead letters)"


def test_an_event_pending_longer_than_the_limit_fails_the_intake(sqlite_engine: Engine) -> None:
    log_entry(sqlite_engine, "c1", received_s_ago=30)
    log_entry(sqlite_engine, "c2", received_s_ago=500)
    log_entry(sqlite_engine, "c3", received_s_ago=9000, status="done")

    fresh = check_intake(sqlite_engine, max_pending_seconds=600, now=NOW)
    stalled = check_intake(sqlite_engine, max_pending_seconds=120, now=NOW)

    assert fresh.ok
    assert not stalled.ok
    assert stalled.facts["oldest_pending_seconds"] == 500.0
    assert stalled.facts["pending"] == 2
    assert "older than 120s: no worker is applying it" in stalled.detail


def test_events_held_back_by_a_parked_key_are_counted_not_failed(sqlite_engine: Engine) -> None:
    log_entry(sqlite_engine, "c1", received_s_ago=5000)
    park(sqlite_engine, "c1")
    dead_letter(sqlite_engine)

    check = check_intake(sqlite_engine, max_pending_seconds=60, now=NOW)

    assert check.ok
    assert check.facts == {
        "pending": 1,
        "oldest_pending_seconds": None,
        "max_pending_seconds": 60,
        "parked_keys": 1,
        "dead_letters": 1,
    }


def test_without_broker_url_the_broker_and_worker_checks_have_nothing_to_check() -> None:
    checks = check_broker(None)
    assert [(check.name, check.ok) for check in checks] == [("broker", True), ("worker", True)]


def test_an_unreachable_broker_fails_both_checks() -> None:
    def refuse(parameters: object) -> pika.BlockingConnection:
        raise pika.exceptions.AMQPConnectionError("connection refused")

    broker, worker = check_broker("amqp://guest:guest@127.0.0.1:1/%2F", connection_factory=refuse)

    assert not broker.ok and "127.0.0.1:1" in broker.detail
    assert not worker.ok


def test_a_consumer_on_the_intake_queue_is_a_working_worker() -> None:
    connection, factory = broker_with(SimpleNamespace(consumer_count=2, message_count=7))

    broker, worker = check_broker(URL, connection_factory=factory)

    assert broker.ok and worker.ok
    assert worker.facts == {"consumers": 2, "messages": 7}
    assert connection.channel_made.asked == [(INTAKE_QUEUE, True)]
    assert not connection.is_open


def test_no_consumer_on_the_intake_queue_fails_the_worker_check() -> None:
    _, factory = broker_with(SimpleNamespace(consumer_count=0, message_count=3))

    broker, worker = check_broker(URL, connection_factory=factory)

    assert broker.ok
    assert not worker.ok
    assert worker.detail == f"no worker consuming {INTAKE_QUEUE} (3 waiting)"


def test_an_undeclared_intake_queue_means_no_worker_ever_started() -> None:
    _, factory = broker_with(pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND"))

    broker, worker = check_broker(URL, connection_factory=factory)

    assert broker.ok
    assert not worker.ok
    assert "is not declared" in worker.detail


def test_a_broker_failing_while_asked_fails_the_broker_check() -> None:
    _, factory = broker_with(pika.exceptions.ChannelClosedByBroker(403, "ACCESS_REFUSED"))

    broker, worker = check_broker(URL, connection_factory=factory)

    assert not broker.ok and "ACCESS_REFUSED" in broker.detail
    assert not worker.ok


def test_check_all_runs_every_check_in_order(sqlite_engine: Engine) -> None:
    _, factory = broker_with(SimpleNamespace(consumer_count=1, message_count=0))

    checks = check_all(sqlite_engine, URL, connection_factory=factory)

    assert [(check.name, check.ok) for check in checks] == [
        ("database", True),
        ("intake", True),
        ("broker", True),
        ("worker", True),
    ]


def test_the_health_command_prints_one_json_object_and_exits_0_when_all_is_well(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["health", "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert [check["name"] for check in report["checks"]] == [
        "database",
        "intake",
        "broker",
        "worker",
    ]
    assert report["checks"][1]["dead_letters"] == 0


def test_the_health_command_exits_1_on_a_stalled_intake(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_entry(sqlite_engine, "c1", received_s_ago=0)
    monkeypatch.setenv("DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    monkeypatch.delenv("BROKER_URL", raising=False)

    # NOW lies in the past, so the entry is as old as the time since then.
    result = runner.invoke(app, ["health", "--max-pending-seconds", "60"])

    assert result.exit_code == 1
    assert "FAIL intake: oldest pending entry received" in result.output
    assert "ok   database" in result.output


def test_the_health_command_exits_1_when_the_database_is_not_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, ["health", "--json"])

    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False
    assert [(check["name"], check["ok"]) for check in report["checks"][:2]] == [
        ("database", False),
        ("intake", False),
    ]


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_a_separate_worker_or_scheduler_needs_rabbitmq(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)

    result = runner.invoke(app, [command])

    assert result.exit_code == 2
    assert "recourse run" in result.output
