"""The workers in embedded mode: StubBroker, Dramatiq worker threads, SQLite. The same actors,
middleware and unit of work as on RabbitMQ and PostgreSQL, without a server."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from ledger import Book
from ledger.accounts import owner_side_balances
from messages.transport import EVENTS_QUEUE, TICKS_QUEUE
from policy.apply import ApplyResult
from policy.tables import inbox
from workers.actors import declare_actors
from workers.broker import worker_middleware
from workers.dlq import AT, ERROR, REASON
from workers.metrics import EngineMetrics
from workers.middleware import RetryPolicy
from workers.middleware.log_context import LogContext, message_context
from workers.replay import replay_lines
from workers.runtime import Runtime
from workers.settings import Settings

FAST: dict[str, Any] = {"retry_min_backoff_ms": 20, "retry_max_backoff_ms": 200}
SC6_EXAMPLE = Path(__file__).parents[2] / "examples" / "sc6-worked-example.jsonl"
WAIT_MS = 20_000


def event(event_id: str, type_: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": type_,
        "occurred_at": at,
        "schema_version": 1,
        "data": data,
    }


OPENED = event(
    "e1",
    "contract.opened",
    "2026-03-02T09:00:00Z",
    contract_id="c1",
    kind="fixed",
    client_id="ana",
    creator_id="ben",
    currency="USD",
    policy="spectrum",
)
FUNDED = event(
    "e2",
    "milestone.funded",
    "2026-03-02T10:00:00Z",
    contract_id="c1",
    milestone_id="m1",
    payment_id="p1",
    amount_minor=50_000,
    processor_fee_minor=1480,
)
RELEASED = event(
    "e3",
    "milestone.released",
    "2026-03-05T16:00:00Z",
    contract_id="c1",
    milestone_id="m1",
    released_by="client",
)
WITHDRAWAL = event(
    "e4",
    "withdrawal.requested",
    "2026-03-06T09:00:00Z",
    withdrawal_id="w1",
    user_id="nobody",
    amount_minor=100,
    currency="USD",
)


@pytest.fixture
def make_runtime(sqlite_engine: Engine) -> Iterator[Callable[..., Runtime]]:
    made: list[tuple[Runtime, Worker]] = []

    def make(**settings: Any) -> Runtime:
        runtime = Runtime.build(
            Settings(broker_url=None, **{**FAST, **settings}), engine=sqlite_engine
        )
        made.append((runtime, runtime.start_worker(threads=2, timeout_ms=50)))
        return runtime

    yield make
    for runtime, worker in made:
        worker.stop()
        runtime.broker.close()


def settle(runtime: Runtime) -> StubBroker:
    broker = runtime.broker
    assert isinstance(broker, StubBroker)
    for queue in (EVENTS_QUEUE, TICKS_QUEUE):
        broker.join(queue, fail_fast=False, timeout=WAIT_MS)
    return broker


def balances(engine: Engine) -> dict[str, dict[str, int]]:
    """From the owner's side, as the replay reports them."""
    with engine.begin() as conn:
        return owner_side_balances(Book(conn).balances())


def inbox_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(inbox)).scalar_one()


def test_events_sent_to_the_actor_book_what_the_replay_books(
    make_runtime: Callable[..., Runtime], tmp_path: Any
) -> None:
    from workers.database import make_engine, migrate

    runtime = make_runtime()
    for envelope in (OPENED, FUNDED, RELEASED):
        runtime.actors.event.send(envelope)
        settle(runtime)

    replayed = make_engine(f"sqlite:///{tmp_path / 'replay.sqlite'}")
    migrate(replayed)
    lines = [json.dumps(envelope) for envelope in (OPENED, FUNDED, RELEASED)]
    report = replay_lines(replayed, lines, runtime.policies)
    replayed.dispose()

    assert balances(runtime.engine) == report.balances
    assert balances(runtime.engine)["escrow:m1"] == {"USD": 0}
    assert settle(runtime).dead_letters == []


def test_a_malformed_message_is_dead_lettered_with_its_error_and_touches_nothing(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.actors.event.send({**FUNDED, "data": {**FUNDED["data"], "amount_minor": 1.5}})

    (letter,) = settle(runtime).dead_letters

    assert letter.options[REASON] == "malformed"
    assert "data.amount_minor" in letter.options[ERROR]
    assert isinstance(letter.options[AT], int)
    assert "retries" not in letter.options
    assert inbox_count(runtime.engine) == 0
    assert balances(runtime.engine) == {}


def test_a_second_body_under_the_same_event_id_is_dead_lettered_as_a_conflict(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.actors.event.send(OPENED)
    settle(runtime)
    runtime.actors.event.send({**OPENED, "occurred_at": "2026-03-02T09:00:01Z"})

    (letter,) = settle(runtime).dead_letters

    assert letter.options[REASON] == "idempotency_conflict"
    assert inbox_count(runtime.engine) == 1


def test_a_duplicate_is_acked_and_changes_nothing(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    for envelope in (OPENED, FUNDED):
        runtime.actors.event.send(envelope)
        settle(runtime)
    before = balances(runtime.engine)

    runtime.actors.event.send(FUNDED)

    assert settle(runtime).dead_letters == []
    assert balances(runtime.engine) == before
    duplicates = {"type": "milestone.funded", "result": "duplicate"}
    assert runtime.metrics.value("recourse_events_total", duplicates) == 1


def test_an_event_that_overtakes_its_subject_is_retried_until_the_subject_arrives(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.actors.event.send(FUNDED)
    runtime.actors.event.send_with_options(args=(OPENED,), delay=300)

    assert settle(runtime).dead_letters == []
    assert inbox_count(runtime.engine) == 2
    assert balances(runtime.engine)["escrow:m1"] == {"USD": 50_000}
    retried = {"queue": EVENTS_QUEUE, "reason": "unknown_subject"}
    assert runtime.metrics.value("recourse_retries_total", retried) >= 1


def test_an_unknown_subject_is_dead_lettered_when_its_retry_budget_is_spent(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(unknown_subject_retry_seconds=0.3)
    runtime.actors.event.send(RELEASED)

    (letter,) = settle(runtime).dead_letters

    assert letter.options[REASON] == "unknown_subject"
    assert letter.options[ERROR] == "UnknownSubject: unknown contract 'c1'"
    assert letter.options["retries"] >= 1
    assert inbox_count(runtime.engine) == 0


def test_a_business_rejection_is_not_a_failure(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    runtime.actors.event.send(WITHDRAWAL)

    assert settle(runtime).dead_letters == []
    rejected = {"type": "withdrawal.requested", "result": "rejected"}
    assert runtime.metrics.value("recourse_events_total", rejected) == 1
    assert runtime.metrics.value("recourse_rejections_total", {"reason": "insufficient_balance"})


def test_the_tick_actor_takes_only_ticks(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    runtime.actors.tick.send(OPENED)

    (letter,) = settle(runtime).dead_letters

    assert letter.options[REASON] == "malformed"
    assert "deadline.tick" in letter.options[ERROR]


def test_a_message_with_more_than_the_envelope_is_malformed(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.actors.event.send(OPENED, "extra")
    runtime.actors.event.send_with_options(args=(OPENED,), kwargs={"extra": 1})

    letters = settle(runtime).dead_letters

    assert sorted(letter.options[ERROR].split(":")[0] for letter in letters) == ["args", "kwargs"]
    assert inbox_count(runtime.engine) == 0


def stub_workers(
    process: Callable[[object], ApplyResult], policy: RetryPolicy
) -> tuple[StubBroker, Any, Worker]:
    broker = StubBroker(middleware=worker_middleware(policy, EngineMetrics()))
    actors = declare_actors(broker, process)
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    return broker, actors, worker


def test_a_database_outage_is_retried_until_the_database_is_back() -> None:
    """Many more failures than any bounded budget allows: an outage never dead-letters."""
    attempts = itertools.count(1)

    def process(envelope: object) -> ApplyResult:
        if next(attempts) <= 8:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return ApplyResult("e1", "contract.opened", "applied")

    policy = RetryPolicy(min_backoff_ms=1, max_backoff_ms=5, error_max_retries=0)
    broker, actors, worker = stub_workers(process, policy)
    try:
        actors.event.send(OPENED)
        broker.join(EVENTS_QUEUE, fail_fast=False, timeout=WAIT_MS)
    finally:
        worker.stop()

    assert broker.dead_letters == []
    assert next(attempts) == 10


def test_an_unexpected_error_is_dead_lettered_after_its_retries() -> None:
    calls: list[object] = []

    def process(envelope: object) -> ApplyResult:
        calls.append(envelope)
        raise RuntimeError("handler bug")

    policy = RetryPolicy(min_backoff_ms=1, max_backoff_ms=5, error_max_retries=2)
    broker, actors, worker = stub_workers(process, policy)
    try:
        actors.event.send(OPENED)
        broker.join(EVENTS_QUEUE, fail_fast=False, timeout=WAIT_MS)
    finally:
        worker.stop()

    (letter,) = broker.dead_letters
    assert letter.options[REASON] == "handler_error"
    assert letter.options[ERROR] == "RuntimeError: handler bug"
    assert len(calls) == 3


def test_the_log_context_names_the_event_its_contract_and_the_attempt() -> None:
    broker = StubBroker(middleware=worker_middleware(RetryPolicy(), EngineMetrics()))
    actors = declare_actors(broker, lambda envelope: ApplyResult("e2", "x", "applied"))
    message = actors.event.message_with_options(args=(FUNDED,), retries=2)
    from dramatiq.brokers.stub import _StubMessageProxy

    proxy = _StubMessageProxy(message)
    LogContext().before_process_message(broker, proxy)
    try:
        bound = structlog.contextvars.get_contextvars()
    finally:
        LogContext().after_process_message(broker, proxy)

    assert bound == message_context(proxy)
    assert {key: bound[key] for key in ("event_id", "type", "contract_id", "attempt")} == {
        "event_id": "e2",
        "type": "milestone.funded",
        "contract_id": "c1",
        "attempt": 3,
    }
    assert structlog.contextvars.get_contextvars() == {}


def test_the_log_context_of_a_malformed_message_keeps_what_it_can() -> None:
    broker = StubBroker(middleware=worker_middleware(RetryPolicy(), EngineMetrics()))
    actors = declare_actors(broker, lambda envelope: ApplyResult("e", "x", "applied"))
    from dramatiq.brokers.stub import _StubMessageProxy

    context = message_context(
        _StubMessageProxy(actors.event.message({"event_id": 7, "type": "x" * 500}))
    )

    assert "event_id" not in context
    assert len(context["type"]) == 128
    assert context["attempt"] == 1


def test_run_all_works_the_queues_relays_and_ticks_in_one_process(
    sqlite_engine: Engine,
) -> None:
    """`recourse run` in the embedded default: StubBroker, SQLite, the in-process sink."""
    from datetime import UTC, datetime

    from scheduler.clock import FixedClock
    from workers.relay import MemorySink
    from workers.runtime import run_all

    settings = Settings(broker_url=None, relay_idle_seconds=0.01, **FAST)
    runtime = Runtime.build(settings, engine=sqlite_engine)
    sink, stop = MemorySink(), threading.Event()
    clock = FixedClock(datetime(2026, 5, 1, tzinfo=UTC))
    engine_thread = threading.Thread(
        target=run_all,
        args=(runtime, stop),
        kwargs={"threads": 1, "sink": sink, "clock": clock, "timeout_ms": 50},
    )
    engine_thread.start()
    try:
        for line in SC6_EXAMPLE.read_text("utf-8").splitlines():
            runtime.actors.event.send(json.loads(line))
        deadline = time.monotonic() + WAIT_MS / 1000
        while not {"refund.completed", "dispute.resolved"} <= {n.type for n in sink.sent}:
            assert time.monotonic() < deadline, "the refund never reached the sink"
            time.sleep(0.01)
    finally:
        stop.set()
        engine_thread.join(timeout=30)

    assert not engine_thread.is_alive()
    with sqlite_engine.connect() as conn:
        ticks = conn.execute(select(inbox.c.event_id).where(inbox.c.type == "deadline.tick"))
        assert list(ticks.scalars()) == ["tick:2026-05-01T00:00:00Z"]
    assert balances(sqlite_engine)["user:ana"] == {"USD": 52_000}
