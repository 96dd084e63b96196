"""The workers on the real servers: Dramatiq worker threads consuming RabbitMQ, applying events
to PostgreSQL. What they book must be what the replay books from the same file on SQLite, with
every event delivered twice, with contracts racing on several threads, and a malformed or
conflicting message must end in the dead-letter queue with its reason, touching nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from dramatiq import Worker
from sqlalchemy import Engine, func, select

from ledger import Book, audit
from ledger.accounts import owner_side_balances
from messages import MalformedMessage, parse_event
from messages.publisher import EventPublisher
from messages.transport import (
    EVENT_ACTOR,
    EVENTS_QUEUE,
    TICK_TYPE,
    dead_letter_queue,
    dramatiq_message_body,
    queue_declarations,
)
from policy.config import load_policies
from policy.tables import inbox, outbox
from workers.dlq import DeadLetter, DeadLetterQueues
from workers.replay import replay_lines
from workers.runtime import Runtime
from workers.settings import Settings

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

STORY = Path(__file__).parents[1] / "data" / "workers-story.jsonl"
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.jsonl"))
EVENTS_XQ = dead_letter_queue(EVENTS_QUEUE)
FINISHED = ("applied", "rejected", "duplicate", "dead_lettered")
WAIT_S = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll `condition` until it holds; fail, naming `what`, after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def start_workers(
    pg_url: str, pg_engine: Engine, rabbit_url: str
) -> Iterator[Callable[..., Runtime]]:
    started: list[tuple[Runtime, Worker]] = []

    def start(threads: int = 1, **settings: Any) -> Runtime:
        runtime = Runtime.build(
            Settings(
                database_url=pg_url,
                broker_url=rabbit_url,
                retry_min_backoff_ms=20,
                retry_max_backoff_ms=500,
                **settings,
            ),
            engine=pg_engine,
        )
        started.append((runtime, runtime.start_worker(threads, timeout_ms=100)))
        return runtime

    yield start
    for runtime, worker in started:
        worker.stop()
        runtime.broker.close()


def handled(runtime: Runtime) -> int:
    """Messages the workers finished with: applied, rejected, dropped as duplicates, or
    dead-lettered."""
    total = 0.0
    for metric in runtime.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "recourse_events_total" and sample.labels["result"] in FINISHED:
                total += sample.value
    return int(total)


def publish_story(runtime: Runtime, url: str, lines: list[str], copies: int) -> None:
    """Publish the lines in file order, a malformed one as the raw body an upstream bug would
    send. Ticks travel on their own queue, so a tick is sent only once everything before it is
    handled (as in the replay, which reads one line after another)."""
    sent = 0
    with EventPublisher(url) as publisher:
        for number, line in enumerate(lines, start=1):
            try:
                event = parse_event(line)
            except MalformedMessage:
                event = None
            if event is not None and event.type == TICK_TYPE:
                wait_for_handled(runtime, sent)
            for _ in range(copies):
                if event is None:
                    publisher.publish_raw(malformed_message(line, f"line-{number}"))
                else:
                    publisher.publish(event)
                sent += 1
    wait_for_handled(runtime, sent)


def malformed_message(line: str, message_id: str) -> bytes:
    try:
        envelope: object = json.loads(line)
    except ValueError:
        envelope = line
    return dramatiq_message_body(envelope, EVENTS_QUEUE, EVENT_ACTOR, message_id)


def wait_for_handled(runtime: Runtime, count: int) -> None:
    wait_until(lambda: handled(runtime) == count, f"{count} messages handled")


def dead_letters(url: str) -> list[DeadLetter]:
    with DeadLetterQueues(url) as queues:
        return queues.peek(EVENTS_XQ)


def replayed(lines: list[str], sqlite_engine: Engine) -> Any:
    return replay_lines(sqlite_engine, lines, load_policies())


def books(engine: Engine) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]], bool]:
    with engine.connect() as conn:
        balances = owner_side_balances(Book(conn).balances())
        bodies: list[str] = list(
            conn.execute(select(outbox.c.body).order_by(outbox.c.seq)).scalars()
        )
        notifications = [json.loads(body) for body in bodies]
        report = audit(conn)
    return balances, notifications, report.ok


def by_id(notifications: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["notification_id"]: item for item in notifications}


@pytest.mark.parametrize("story", [STORY, *EXAMPLES], ids=lambda path: path.stem)
def test_a_story_through_the_workers_books_what_the_replay_books(
    story: Path, start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    """Where the replay, which has no later, rejects an event whose subject never comes with
    `unknown_subject`, the workers retry it for their budget and then dead-letter it with that
    reason; everything else is the same, to the cent and to the notification."""
    lines = [line for line in story.read_text("utf-8").splitlines() if line.strip()]
    runtime = start_workers(threads=1, unknown_subject_retry_seconds=1)

    publish_story(runtime, rabbit_url, lines, copies=1)

    report = replayed(lines, sqlite_engine)
    never_known = {
        item["event_id"] for item in report.rejections if item["reason"] == "unknown_subject"
    }
    balances, notifications, audit_ok = books(runtime.engine)
    assert balances == report.balances
    assert by_id(notifications) == {
        notification_id: item
        for notification_id, item in by_id(report.notifications).items()
        if not any(notification_id.startswith(f"{event_id}:") for event_id in never_known)
    }
    letters = dead_letters(rabbit_url)
    assert {letter.event_id for letter in letters if letter.reason == "unknown_subject"} == (
        never_known
    )
    assert sorted(
        letter.error if letter.reason == "malformed" else f"{letter.reason}: {letter.error}"
        for letter in letters
        if letter.reason != "unknown_subject"
    ) == sorted(item["error"] for item in report.dead_letters)
    assert audit_ok


def test_every_event_delivered_twice_books_the_same_as_once(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    lines = STORY.read_text("utf-8").splitlines()
    runtime = start_workers(threads=1)

    publish_story(runtime, rabbit_url, lines, copies=2)

    balances, notifications, _ = books(runtime.engine)
    report = replayed(lines, sqlite_engine)
    assert balances == report.balances
    assert len(notifications) == len(report.notifications)
    duplicates = sum(
        runtime.metrics.value("recourse_events_total", {"type": kind, "result": "duplicate"})
        for kind in {json.loads(line)["type"] for line in lines}
    )
    assert duplicates == len(lines)


def contract_lines(count: int) -> list[str]:
    lines = []
    for number in range(count):
        contract, milestone = f"c{number}", f"m{number}"
        for suffix, type_, at, data in (
            (
                "open",
                "contract.opened",
                "2026-03-02T09:00:00Z",
                {
                    "contract_id": contract,
                    "kind": "fixed",
                    "client_id": f"client{number % 5}",
                    "creator_id": f"creator{number % 3}",
                    "currency": "USD",
                },
            ),
            (
                "fund",
                "milestone.funded",
                "2026-03-02T10:00:00Z",
                {
                    "contract_id": contract,
                    "milestone_id": milestone,
                    "payment_id": f"p{number}",
                    "amount_minor": 10_000 + number,
                    "processor_fee_minor": 320,
                },
            ),
            (
                "release",
                "milestone.released",
                "2026-03-03T10:00:00Z",
                {"contract_id": contract, "milestone_id": milestone, "released_by": "client"},
            ),
        ):
            envelope = {
                "event_id": f"{contract}-{suffix}",
                "type": type_,
                "occurred_at": at,
                "schema_version": 1,
                "data": data,
            }
            lines.append(json.dumps(envelope))
    return lines


def test_contracts_run_in_parallel_and_racing_duplicates_are_retried_not_dead_lettered(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    """Eight threads, every message twice in a row: copies of one event race on the inbox key,
    a release may overtake its funding; the loser waits or retries, and nothing is lost."""
    lines = contract_lines(40)
    runtime = start_workers(threads=8)

    with EventPublisher(rabbit_url) as publisher:
        for line in lines:
            publisher.publish(line)
            publisher.publish(line)
    wait_until(lambda: handled(runtime) == 2 * len(lines), "every copy handled")

    balances, _, audit_ok = books(runtime.engine)
    assert balances == replayed(lines, sqlite_engine).balances
    assert audit_ok
    with DeadLetterQueues(rabbit_url) as queues:
        assert queues.depth(EVENTS_XQ) == 0


def inbox_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(inbox)).scalar_one()


def raw_publish(url: str, body: bytes) -> None:
    with EventPublisher(url) as publisher:
        publisher.publish_raw(body)


def test_a_malformed_message_lands_in_the_dead_letter_queue_with_its_reason(
    start_workers: Callable[..., Runtime], rabbit_url: str
) -> None:
    runtime = start_workers()
    envelope = json.loads(STORY.read_text("utf-8").splitlines()[1])
    envelope["data"]["amount_minor"] = -5
    raw_publish(rabbit_url, dramatiq_message_body(envelope, EVENTS_QUEUE, EVENT_ACTOR, "bad-1"))
    raw_publish(rabbit_url, b"{not json")

    with DeadLetterQueues(rabbit_url) as queues:
        wait_until(lambda: queues.depth(EVENTS_XQ) == 2, "two dead letters")
        letters = {letter.message_id: letter for letter in queues.peek(EVENTS_XQ)}
        assert queues.depth(EVENTS_XQ) == 2

    malformed = letters["bad-1"]
    assert malformed.reason == "malformed"
    assert "data.amount_minor" in malformed.error
    assert (malformed.event_id, malformed.retries) == (envelope["event_id"], 0)
    assert letters[None].reason == "undecodable"
    assert inbox_rows(runtime.engine) == 0
    assert books(runtime.engine)[0] == {}


def test_a_conflicting_body_and_an_unknown_subject_are_dead_lettered_by_reason(
    start_workers: Callable[..., Runtime], rabbit_url: str
) -> None:
    runtime = start_workers(unknown_subject_retry_seconds=0.5)
    opened, funded = (json.loads(line) for line in STORY.read_text("utf-8").splitlines()[:2])
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(opened)
        wait_until(lambda: inbox_rows(runtime.engine) == 1, "the contract opened")
        publisher.publish({**opened, "occurred_at": "2026-03-02T09:00:01Z"})
        publisher.publish({**funded, "data": {**funded["data"], "contract_id": "c-nowhere"}})

    with DeadLetterQueues(rabbit_url) as queues:
        wait_until(lambda: queues.depth(EVENTS_XQ) == 2, "two dead letters")
        reasons = {letter.reason: letter for letter in queues.peek(EVENTS_XQ)}

    assert set(reasons) == {"idempotency_conflict", "unknown_subject"}
    assert reasons["unknown_subject"].retries >= 1
    assert "c-nowhere" in reasons["unknown_subject"].error
    assert inbox_rows(runtime.engine) == 1


def test_dead_letters_can_be_listed_retried_and_purged(
    start_workers: Callable[..., Runtime], rabbit_url: str
) -> None:
    """An event dead-lettered because its contract was unknown goes through once retried
    after the contract arrived."""
    runtime = start_workers(unknown_subject_retry_seconds=0.2)
    opened, funded = (json.loads(line) for line in STORY.read_text("utf-8").splitlines()[:2])
    with EventPublisher(rabbit_url) as publisher:
        funded_id = publisher.publish(funded)
        raw_publish(rabbit_url, b"junk")
        with DeadLetterQueues(rabbit_url) as queues:
            wait_until(lambda: queues.depth(EVENTS_XQ) == 2, "two dead letters")
            publisher.publish(opened)
            wait_until(lambda: inbox_rows(runtime.engine) == 1, "the contract opened")

            assert queues.retry(EVENTS_XQ, {funded_id}) == 1
            wait_until(lambda: inbox_rows(runtime.engine) == 2, "the funding applied")
            (left,) = queues.peek(EVENTS_XQ)
            assert left.reason == "undecodable"
            assert queues.purge(EVENTS_XQ) == 1
            assert queues.depth(EVENTS_XQ) == 0


def test_a_retried_message_keeps_its_delivery_persistent(rabbit_url: str) -> None:
    """What `dlq retry` sends back survives a broker restart like the original did."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    for name, arguments in queue_declarations(EVENTS_QUEUE):
        channel.queue_declare(queue=name, durable=True, arguments=arguments)
    body = dramatiq_message_body({"event_id": "x"}, EVENTS_XQ, EVENT_ACTOR, "m-1")
    channel.basic_publish("", EVENTS_XQ, body, pika.BasicProperties(delivery_mode=2))

    with DeadLetterQueues(rabbit_url) as queues:
        assert queues.retry(EVENTS_XQ) == 1

    method, properties, sent = channel.basic_get(EVENTS_QUEUE, auto_ack=True)
    connection.close()
    assert method is not None
    assert properties.delivery_mode == 2
    assert properties.message_id == "m-1"
    assert json.loads(sent)["queue_name"] == EVENTS_QUEUE


def test_the_dlq_commands_list_show_retry_and_purge(
    rabbit_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from workers.cli import app
    from workers.dlq import REASON

    monkeypatch.setenv("BROKER_URL", rabbit_url)
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    for queue, arguments in queue_declarations(EVENTS_QUEUE):
        channel.queue_declare(queue=queue, durable=True, arguments=arguments)
    for message_id, reason in (("m-1", "malformed"), ("m-2", "unknown_subject")):
        letter = json.loads(
            dramatiq_message_body({"event_id": message_id}, EVENTS_XQ, EVENT_ACTOR, message_id)
        )
        letter["options"] = {REASON: reason}
        channel.basic_publish("", EVENTS_XQ, json.dumps(letter).encode())
    runner = CliRunner()

    listed = runner.invoke(app, ["dlq", "list", "--queue", "events"])
    shown = runner.invoke(app, ["dlq", "show", "m-2"])
    retried = runner.invoke(app, ["dlq", "retry", "m-1"])
    missing = runner.invoke(app, ["dlq", "show", "m-1"])
    purged = runner.invoke(app, ["dlq", "purge", "--yes"])

    assert listed.exit_code == 0, listed.output
    assert [line.split()[:3] for line in listed.output.splitlines()] == [
        ["m-1", EVENTS_XQ, "malformed"],
        ["m-2", EVENTS_XQ, "unknown_subject"],
    ]
    assert shown.exit_code == 0
    assert json.loads(shown.output)["message"]["args"] == [{"event_id": "m-2"}]
    assert (retried.exit_code, retried.output.strip()) == (
        0,
        "1 dead letters sent back to their queues",
    )
    assert missing.exit_code == 1
    assert (purged.exit_code, purged.output.strip()) == (0, "1 dead letters purged")
    method, _, body = channel.basic_get(EVENTS_QUEUE, auto_ack=True)
    connection.close()
    assert method is not None
    assert json.loads(body)["options"] == {}


def test_connections_cut_under_the_workers_are_retried_until_the_database_answers(
    start_workers: Callable[..., Runtime],
    rabbit_url: str,
    pg_admin_url: str,
    sqlite_engine: Engine,
) -> None:
    """The server ends every session of the database (as a restart does) while events are
    being applied: those transactions fail, are retried, and nothing is lost or doubled."""
    from sqlalchemy import create_engine, text

    lines = contract_lines(30)
    runtime = start_workers(threads=4)
    database = runtime.engine.url.database
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    terminate = text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = :db AND pid <> pg_backend_pid()"
    )
    try:
        with EventPublisher(rabbit_url) as publisher:
            for number, line in enumerate(lines):
                publisher.publish(line)
                if number % 15 == 14:
                    with admin.connect() as conn:
                        conn.execute(terminate, {"db": database})
        wait_until(lambda: handled(runtime) == len(lines), "every event handled")
    finally:
        admin.dispose()

    balances, _, audit_ok = books(runtime.engine)
    assert balances == replayed(lines, sqlite_engine).balances
    assert audit_ok
    assert dead_letters(rabbit_url) == []
