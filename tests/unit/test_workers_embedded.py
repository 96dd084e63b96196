"""The ordered runtime in embedded mode: SQLite, the in-process intake, Dramatiq's StubBroker
carrying the nudges. The same judge, log, drains and barrier as on RabbitMQ and PostgreSQL,
without a server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from ledger import Book
from ledger.accounts import owner_side_balances
from policy.tables import inbox
from workers.database import make_engine, migrate
from workers.intake.tables import (
    applied_steps,
    dead_letters,
    event_log,
    owed_ticks,
    parked_keys,
)
from workers.replay import replay_lines
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings

FAST: dict[str, Any] = {
    "retry_min_backoff_ms": 20,
    "retry_max_backoff_ms": 100,
    "sweep_seconds": 0.2,
}
SPECTRUM_WEEK = Path(__file__).parents[2] / "examples" / "spectrum-week.jsonl"
SC6_EXAMPLE = Path(__file__).parents[2] / "examples" / "sc6-worked-example.jsonl"
WAIT_S = 20.0


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


@pytest.fixture
def make_runtime(sqlite_engine: Engine) -> Iterator[Callable[..., Runtime]]:
    made: list[tuple[Runtime, WorkerHandle]] = []

    def make(**settings: Any) -> Runtime:
        runtime = Runtime.build(
            Settings(broker_url=None, **{**FAST, **settings}), engine=sqlite_engine
        )
        made.append((runtime, runtime.start_worker(threads=2, timeout_ms=50)))
        return runtime

    yield make
    for runtime, handle in made:
        handle.stop()
        runtime.broker.close()


def settle(runtime: Runtime) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        with runtime.engine.connect() as conn:
            pending = conn.execute(
                select(func.count()).select_from(event_log).where(event_log.c.status == "pending")
            ).scalar_one()
            parked = conn.execute(select(func.count()).select_from(parked_keys)).scalar_one()
            owed = conn.execute(select(func.count()).select_from(owed_ticks)).scalar_one()
        if pending == 0 and parked == 0 and owed == 0:
            return
        assert time.monotonic() < deadline, f"{pending} events pending, {parked} keys parked"
        time.sleep(0.02)


def balances(engine: Engine) -> dict[str, dict[str, int]]:
    """From the owner's side, as the replay reports them."""
    with engine.begin() as conn:
        return owner_side_balances(Book(conn).balances())


def letters(engine: Engine) -> list[tuple[str | None, str, list[list[str]]]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(dead_letters.c.event_id, dead_letters.c.reason, dead_letters.c.problems)
        ).all()
    return [(event_id, reason, json.loads(problems)) for event_id, reason, problems in rows]


def results(engine: Engine) -> dict[str, tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(inbox.c.event_id, inbox.c.result, inbox.c.reason)).all()
    return {event_id: (result, reason) for event_id, result, reason in rows}


def test_a_story_submitted_at_once_books_what_the_replay_books(
    make_runtime: Callable[..., Runtime], tmp_path: Any
) -> None:
    runtime = make_runtime(unknown_subject_retry_seconds=0.3)
    lines = [line for line in SPECTRUM_WEEK.read_text("utf-8").splitlines() if line.strip()]
    for line in lines:
        runtime.submit(line)
    settle(runtime)

    scratch = make_engine(f"sqlite:///{tmp_path / 'replay.sqlite'}")
    migrate(scratch)
    assert balances(runtime.engine) == replay_lines(scratch, lines, runtime.policies).balances


def test_a_malformed_message_is_dead_lettered_naming_the_field_and_touches_nothing(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.submit({**FUNDED, "data": {**FUNDED["data"], "amount_minor": 1.5}})
    settle(runtime)

    ((event_id, reason, problems),) = letters(runtime.engine)
    assert (event_id, reason) == (None, "malformed")
    assert [field for field, _ in problems] == ["data.amount_minor"]
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(event_log)).scalar_one() == 0
    assert results(runtime.engine) == {}


def test_a_second_body_under_the_same_event_id_is_dead_lettered_as_a_conflict(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime()
    runtime.submit(OPENED)
    runtime.submit({**OPENED, "data": {**OPENED["data"], "client_id": "someone-else"}})
    settle(runtime)

    assert [(e, r) for e, r, _ in letters(runtime.engine)] == [("e1", "idempotency_conflict")]
    assert results(runtime.engine) == {"e1": ("applied", None)}


def test_a_duplicate_changes_nothing(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    for envelope in (OPENED, FUNDED, FUNDED, RELEASED, RELEASED):
        runtime.submit(envelope)
    settle(runtime)

    with runtime.engine.connect() as conn:
        done = conn.execute(
            select(event_log.c.event_id, event_log.c.result).order_by(event_log.c.seq)
        ).all()
    assert [tuple(row) for row in done] == [
        ("e1", "applied"),
        ("e2", "applied"),
        ("e2", "duplicate"),
        ("e3", "applied"),
        ("e3", "duplicate"),
    ]
    assert balances(runtime.engine)["user:ben"] == {"USD": 46_000}


CHARGEBACK = event(
    "cb-open",
    "chargeback.opened",
    "2026-03-03T09:00:00Z",
    chargeback_id="cb1",
    payment_id="p1",
    amount_minor=50_000,
    issuer_fee_minor=1_500,
)
CHARGEBACK_RESOLVED = event(
    "cb-resolved",
    "chargeback.resolved",
    "2026-03-04T09:00:00Z",
    chargeback_id="cb1",
    outcome="client_lost",
)


def test_an_event_that_overtakes_its_subject_waits_and_holds_back_its_key_only(
    make_runtime: Callable[..., Runtime],
) -> None:
    """A chargeback on a payment not seen yet parks its key; its resolution waits behind it
    (it would otherwise be refused); another contract goes on; the payment arrives and both
    are applied, in their order."""
    runtime = make_runtime(unknown_subject_retry_seconds=30)
    runtime.submit(CHARGEBACK)
    runtime.submit(CHARGEBACK_RESOLVED)
    runtime.submit({**OPENED, "event_id": "o2", "data": {**OPENED["data"], "contract_id": "c2"}})
    deadline = time.monotonic() + WAIT_S
    while "o2" not in results(runtime.engine):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert set(results(runtime.engine)) == {"o2"}

    runtime.submit(OPENED)
    runtime.submit(FUNDED)
    settle(runtime)

    assert {event_id for event_id, (result, _) in results(runtime.engine).items()} == {
        "o2",
        "e1",
        "e2",
        "cb-open",
        "cb-resolved",
    }
    assert results(runtime.engine)["cb-open"] == ("applied", None)
    with runtime.engine.connect() as conn:
        steps = list(
            conn.execute(
                select(event_log.c.event_id)
                .join(applied_steps, applied_steps.c.log_seq == event_log.c.seq)
                .order_by(applied_steps.c.step)
            ).scalars()
        )
    assert steps.index("e2") < steps.index("cb-open") < steps.index("cb-resolved")


def test_an_unknown_subject_is_dead_lettered_when_its_budget_is_spent_and_its_key_goes_on(
    make_runtime: Callable[..., Runtime],
) -> None:
    """A contract's funding before its opening on the same key: the opening, a later event of
    that key, cannot overtake it, so the funding waits out its budget, then the release behind
    it, then the opening is applied."""
    runtime = make_runtime(unknown_subject_retry_seconds=0.3)
    runtime.submit(FUNDED)
    runtime.submit(RELEASED)
    runtime.submit(OPENED)
    settle(runtime)

    assert [(e, r) for e, r, _ in letters(runtime.engine)] == [
        ("e2", "unknown_subject"),
        ("e3", "unknown_subject"),
    ]
    assert results(runtime.engine) == {"e1": ("applied", None)}


def test_an_unexpected_error_is_retried_then_dead_lettered_as_handler_error(
    make_runtime: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    from policy.registry import HANDLERS

    calls: list[str] = []

    def broken(context: Any, envelope: Any) -> Any:
        calls.append(envelope.event_id)
        raise RuntimeError("handler bug")

    monkeypatch.setitem(HANDLERS, "contract.opened", broken)
    runtime = make_runtime(error_max_retries=2)
    runtime.submit(OPENED)
    settle(runtime)

    ((event_id, reason, problems),) = letters(runtime.engine)
    assert (event_id, reason) == ("e1", "handler_error")
    assert problems == [["event", "RuntimeError: handler bug"]]
    assert calls == ["e1", "e1", "e1"]


def test_a_tick_fires_only_after_the_events_before_it(
    make_runtime: Callable[..., Runtime],
) -> None:
    """The release starts the review window; a tick long after it closes the window and
    finalizes the milestone; a dispute published after the tick comes too late."""
    runtime = make_runtime()
    for envelope in (OPENED, FUNDED, RELEASED):
        runtime.submit(envelope)
    runtime.submit(event("t1", "deadline.tick", "2026-06-01T00:00:00Z"))
    settle(runtime)

    with runtime.engine.connect() as conn:
        steps = conn.execute(
            select(event_log.c.event_id, applied_steps.c.action)
            .join(applied_steps, applied_steps.c.log_seq == event_log.c.seq)
            .order_by(applied_steps.c.step)
        ).all()
    assert [tuple(step) for step in steps] == [
        ("e1", "event"),
        ("e2", "event"),
        ("e3", "event"),
        ("t1", "tick"),
    ]


def test_run_all_works_the_intake_relays_and_ticks_in_one_process(
    sqlite_engine: Engine,
) -> None:
    """`recourse run` in the embedded default: SQLite, StubBroker, the in-process sink."""
    from scheduler.clock import FixedClock
    from workers.relay import MemorySink
    from workers.runtime import run_all

    settings = Settings(broker_url=None, relay_idle_seconds=0.01, **FAST)
    runtime = Runtime.build(settings, engine=sqlite_engine)
    sink, stop = MemorySink(), threading.Event()
    clock = FixedClock(datetime(2026, 5, 1, 0, 5, tzinfo=UTC))
    engine_thread = threading.Thread(
        target=run_all,
        args=(runtime, stop),
        kwargs={"threads": 1, "sink": sink, "clock": clock, "timeout_ms": 50},
    )
    engine_thread.start()
    try:
        for line in SC6_EXAMPLE.read_text("utf-8").splitlines():
            runtime.submit(line)
        deadline = time.monotonic() + WAIT_S
        while not {"refund.completed", "dispute.resolved"} <= {n.type for n in sink.sent}:
            assert time.monotonic() < deadline, "the refund never reached the sink"
            time.sleep(0.01)
    finally:
        stop.set()
        engine_thread.join(timeout=30)

    assert not engine_thread.is_alive()
    with sqlite_engine.connect() as conn:
        ticks = conn.execute(select(inbox.c.event_id).where(inbox.c.type == "deadline.tick"))
        # Five minutes late (TICK_LATENESS_SECONDS): what was due then is what it fires.
        assert list(ticks.scalars()) == ["tick:2026-05-01T00:00:00Z"]
    assert balances(sqlite_engine)["user:ana"] == {"USD": 52_000}
