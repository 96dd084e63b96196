"""`recourse decide` against a real RabbitMQ: the decision lands on `refunds.events` as a
valid `dispute.resolved` envelope, and the engine applies it like any upstream event."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pika
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from messages import parse_event
from messages.inbound import DisputeResolvedEvent
from messages.transport import INTAKE_QUEUE, declare_intake
from policy.config import load_policies
from workers.cli import app
from workers.replay import replay_lines


def _event(event_id: str, type_: str, at: str, **data: Any) -> str:
    return json.dumps(
        {"event_id": event_id, "type": type_, "occurred_at": at, "schema_version": 1, "data": data}
    )


STORY = [
    _event(
        "e1", "contract.opened", "2026-03-02T09:00:00Z", contract_id="c1", kind="fixed",
        client_id="ana", creator_id="ben", currency="USD", policy="spectrum",
    ),
    _event(
        "e2", "milestone.funded", "2026-03-02T10:00:00Z", contract_id="c1", milestone_id="m1",
        payment_id="p1", amount_minor=50000, processor_fee_minor=1480,
    ),
    _event(
        "e3", "work.started", "2026-03-03T08:00:00Z", contract_id="c1", milestone_id="m1",
        evidence="delivery",
    ),
    _event(
        "e4", "refund.requested", "2026-03-05T11:00:00Z", request_id="d1", contract_id="c1",
        target_id="m1", amount_minor=50000, reason="late and incomplete",
    ),
]  # fmt: skip
"""Work started, so the refund request opens dispute d1 on m1 (SC-3), 500.00 held."""


@pytest.fixture
def db(sqlite_engine: Engine) -> str:
    report = replay_lines(sqlite_engine, STORY, load_policies())
    assert report.rejections == []
    return sqlite_engine.url.render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def operator(monkeypatch: pytest.MonkeyPatch) -> str:
    """Who decides (OP-1), as an operator's shell would set it."""
    monkeypatch.setenv("RECOURSE_OPERATOR", "alice")
    return "alice"


@pytest.fixture
def channel(rabbit_url: str) -> Iterator[Any]:
    """A channel on the test's vhost, with the engine's exchange and intake queue declared (as
    `recourse migrate` or a worker would), so that what `decide` publishes can be read."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    declare_intake(channel)
    yield channel
    connection.close()


def decide(*args: str) -> Result:
    return CliRunner().invoke(app, ["decide", *args])


def published(channel: Any) -> list[dict[str, Any]]:
    """Every envelope that reached the engine's intake queue, taken off it: each the whole body
    of its message, under its contract as routing key, from the broker user that sent it."""
    envelopes: list[dict[str, Any]] = []
    while True:
        method, properties, body = channel.basic_get(queue=INTAKE_QUEUE, auto_ack=True)
        if method is None:
            return envelopes
        envelope = json.loads(body)
        assert method.routing_key == envelope["data"]["contract_id"]
        assert properties.user_id == "guest"
        envelopes.append(envelope)


@pytest.mark.rabbitmq
def test_decide_publishes_a_valid_dispute_resolved_envelope(
    db: str, rabbit_url: str, channel: Any
) -> None:
    result = decide(
        "d1", "--outcome", "partial_refund", "--amount", "12500", "--broker", rabbit_url,
        "--db", db,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (envelope,) = published(channel)
    event = parse_event(envelope)
    assert isinstance(event, DisputeResolvedEvent)
    assert re.fullmatch(r"decide:d1:[0-9a-f-]{36}", event.event_id)
    assert (
        event.data.dispute_id,
        event.data.contract_id,
        event.data.outcome,
        event.data.refund_amount_minor,
    ) == ("d1", "c1", "partial_refund", 12500)
    assert event.data.decided_by == "alice"
    assert result.stdout.startswith(f"published dispute.resolved {event.event_id}: partial_refund")


@pytest.mark.rabbitmq
def test_the_published_decision_settles_the_dispute_in_the_engine(
    db: str, sqlite_engine: Engine, rabbit_url: str, channel: Any
) -> None:
    """SC-3: the decision, read back from the queue, is applied by the same handler."""
    result = decide(
        "d1", "--outcome", "full_refund", "--event-id", "ops-1", "--broker", rabbit_url,
        "--db", db, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    (envelope,) = published(channel)
    assert printed["event"] == envelope
    assert envelope["event_id"] == "ops-1"
    assert envelope["data"] == {
        "dispute_id": "d1",
        "contract_id": "c1",
        "outcome": "full_refund",
        "decided_by": "alice",
    }
    report = replay_lines(sqlite_engine, [json.dumps(envelope)], load_policies())
    assert report.rejections == []
    assert report.balances["user:ana"] == {"USD": 52000}  # 500.00 and its 4% client fee


@pytest.mark.rabbitmq
def test_a_resolved_dispute_is_refused_before_anything_is_sent(
    db: str, sqlite_engine: Engine, rabbit_url: str, channel: Any
) -> None:
    resolved = _event(
        "e5", "dispute.resolved", "2026-03-06T10:00:00Z", dispute_id="d1", contract_id="c1",
        outcome="release_to_creator",
    )  # fmt: skip
    replay_lines(sqlite_engine, [resolved], load_policies())
    result = decide("d1", "--outcome", "full_refund", "--broker", rabbit_url, "--db", db)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: dispute 'd1' is resolved (release_to_creator); only an open dispute takes a "
        "decision; see `recourse contract c1`\n"
    )
    assert published(channel) == []


@pytest.mark.rabbitmq
def test_an_unknown_dispute_or_too_large_an_amount_is_refused(
    db: str, rabbit_url: str, channel: Any
) -> None:
    unknown = decide("d9", "--outcome", "full_refund", "--broker", rabbit_url, "--db", db)
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith(f"error: no dispute 'd9' in {db}; check the id with")
    too_much = decide(
        "d1", "--outcome", "partial_refund", "--amount", "50001", "--broker", rabbit_url,
        "--db", db,
    )  # fmt: skip
    assert too_much.exit_code == 1
    assert too_much.stderr == (
        "error: --amount 500.01 USD is more than 'm1' can still refund (500.00 USD); lower "
        "--amount, or use --outcome full_refund\n"
    )
    assert published(channel) == []


@pytest.mark.rabbitmq
def test_no_check_publishes_without_a_database(rabbit_url: str, channel: Any) -> None:
    result = decide(
        "d7", "--outcome", "release_to_creator", "--no-check", "--contract", "c7",
        "--broker", rabbit_url, "--db", "sqlite:////nonexistent/recourse.sqlite",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (envelope,) = published(channel)
    assert envelope["data"] == {
        "dispute_id": "d7",
        "contract_id": "c7",
        "outcome": "release_to_creator",
        "decided_by": "alice",
    }


def test_no_check_needs_the_contract_given() -> None:
    result = decide("d7", "--outcome", "full_refund", "--no-check", "--broker", "amqp://rabbit/")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the event names the dispute's contract, and no database was checked; "
        "pass --contract CONTRACT_ID\n"
    )


def test_partial_refund_without_an_amount_is_a_usage_error() -> None:
    result = decide("d1", "--outcome", "partial_refund", "--broker", "amqp://rabbit/", "--no-check")
    assert result.exit_code == 2
    assert result.stderr == "error: partial_refund needs an amount; pass --amount MINOR\n"


def test_a_broker_that_is_down_is_one_line_and_exit_code_1() -> None:
    broker = "amqp://guest:secret@127.0.0.1:1/"
    result = decide(
        "d1", "--outcome", "full_refund", "--no-check", "--contract", "c1", "--broker", broker
    )
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: cannot publish to amqp://guest:***@127.0.0.1:1/ (")
    assert "secret" not in line
    assert line.endswith(
        "; check that RabbitMQ is running and that --broker or BROKER_URL point at it"
    )


def test_without_a_broker_url_decide_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BROKER_URL", raising=False)
    result = decide("d1", "--outcome", "full_refund", "--no-check")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: no broker to publish to; set BROKER_URL or pass --broker amqp://USER:PASS@HOST/\n"
    )


def test_a_decision_without_an_operator_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OP-1: who decided is part of the decision; without --operator or RECOURSE_OPERATOR,
    nothing is published (no broker is even asked)."""
    monkeypatch.delenv("RECOURSE_OPERATOR")
    result = decide("d1", "--outcome", "full_refund", "--broker", "amqp://nobody@127.0.0.1:1/")
    assert result.exit_code == 2
    assert "OP-1" in result.output and "--operator" in result.output


@pytest.mark.rabbitmq
def test_the_operator_option_names_who_decided(
    db: str, rabbit_url: str, channel: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECOURSE_OPERATOR")
    result = decide(
        "d1", "--outcome", "release_to_creator", "--operator", "bob", "--broker", rabbit_url,
        "--db", db,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (envelope,) = published(channel)
    assert envelope["data"]["decided_by"] == "bob"
    assert "decided by bob" in result.stdout
