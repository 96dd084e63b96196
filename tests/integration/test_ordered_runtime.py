"""The ordered runtime on the real servers (MESSAGES.md, "Ordering"): whatever the threads and
processes, a history published at once books what the replay of the same lines books, to the
cent, to the notification, to the rejection and its reason."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ordered_driver import (
    START,
    envelope,
    funded_contract,
    live_outcome,
    publish,
    replay_outcome,
    wait_settled,
    wait_until,
    well_formed,
)
from sqlalchemy import Engine, select, update

from ledger.tables import balances
from messages.publisher import EventPublisher
from policy.config import load_policies
from policy.tables import inbox
from workers.intake.tables import applied_steps, event_log, parked_keys
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings
from workers.verify import verify

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.jsonl"))


@pytest.fixture
def start_workers(
    pg_url: str, pg_engine: Engine, rabbit_url: str
) -> Iterator[Callable[..., Runtime]]:
    """Start a worker (intake consumer, Dramatiq threads, sweeper) with the default settings
    but short retry budgets; each call is one more worker, as another process would be."""
    started: list[tuple[Runtime, WorkerHandle]] = []

    def start(threads: int | None = None, **settings: Any) -> Runtime:
        settings.setdefault("unknown_subject_retry_seconds", 2)
        runtime = Runtime.build(
            Settings(
                database_url=pg_url,
                broker_url=rabbit_url,
                retry_min_backoff_ms=50,
                retry_max_backoff_ms=500,
                sweep_seconds=0.5,
                **settings,
            )
        )
        handle = runtime.start_worker(threads, timeout_ms=100)
        started.append((runtime, handle))
        assert handle.consumer is not None
        wait_until(handle.consumer.consuming.is_set, "the intake to consume")
        return runtime

    yield start
    for runtime, handle in started:
        handle.stop()
        runtime.close()


@pytest.mark.parametrize(
    ("workers", "apply_on_intake"),
    [(1, True), (2, True), (1, False)],
    # The default applies most events in the intake's transaction; `drains-only` has the
    # drains apply every one, the path the intake leaves its busy partitions to.
    ids=["one-worker", "two-workers", "drains-only"],
)
@pytest.mark.parametrize("story", EXAMPLES, ids=lambda path: path.stem)
def test_an_example_published_at_once_books_what_its_replay_books(  # noqa: PLR0917
    story: Path,
    workers: int,
    apply_on_intake: bool,
    start_workers: Callable[..., Runtime],
    rabbit_url: str,
    sqlite_engine: Engine,
) -> None:
    lines = well_formed(story.read_text("utf-8").splitlines())
    runtimes = [start_workers(apply_on_intake=apply_on_intake) for _ in range(workers)]

    wait_settled(runtimes[0].engine, publish(rabbit_url, lines))

    live = live_outcome(runtimes[0].engine)
    expected = replay_outcome(lines, sqlite_engine)
    assert live.balances == expected.balances
    assert live.rejections == expected.rejections
    assert live.notifications == expected.notifications
    assert live.dead_letters == expected.dead_letters
    assert verify(runtimes[0].engine, load_policies()).same


# Targeted pairs on 100 contracts at once: each pair's outcome depends on its order.

CONTRACTS = 100


def assert_same_as_replay(runtime: Runtime, lines: list[str], sqlite_engine: Engine) -> None:
    live = live_outcome(runtime.engine)
    expected = replay_outcome(lines, sqlite_engine)
    assert live.balances == expected.balances
    assert live.rejections == expected.rejections
    assert live.notifications == expected.notifications
    assert live.dead_letters == expected.dead_letters


def test_a_release_and_a_refund_request_on_100_contracts_come_out_in_published_order(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    """Before work starts a refund is automatic (spectrum). Even contracts release first (the
    request then opens a dispute: the money is the creator's), odd ones ask for the refund first
    (it is refunded at once, and the release pays the creator the rest)."""
    runtime = start_workers()
    lines: list[str] = []
    for n in range(CONTRACTS):
        lines += funded_contract(n, started=False)
    later = START + timedelta(hours=2)
    for n in range(CONTRACTS):
        release = envelope(
            f"c{n}-release",
            "milestone.released",
            later,
            contract_id=f"c{n}",
            milestone_id=f"m{n}",
            released_by="client",
        )
        refund = envelope(
            f"c{n}-refund",
            "refund.requested",
            later + timedelta(minutes=1),
            request_id=f"r{n}",
            contract_id=f"c{n}",
            target_id=f"m{n}",
            amount_minor=5_000,
            reason="not delivered",
        )
        lines += [release, refund] if n % 2 == 0 else [refund, release]

    wait_settled(runtime.engine, publish(rabbit_url, lines))

    assert_same_as_replay(runtime, lines, sqlite_engine)
    notifications = live_outcome(runtime.engine).notifications
    for n in range(CONTRACTS):
        expected = (
            f"c{n}-refund:dispute.opened" if n % 2 == 0 else f"c{n}-refund:refund.completed:m{n}"
        )
        assert expected in notifications


def test_a_dispute_and_the_tick_that_would_finalize_its_milestone_come_out_as_replay_says(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    """Released milestones finalize at the end of their review window. On even contracts the
    dispute comes before the tick that closes the window, on odd ones after it."""
    runtime = start_workers()
    lines: list[str] = []
    for n in range(CONTRACTS):
        lines += funded_contract(n)
        lines.append(
            envelope(
                f"c{n}-release",
                "milestone.released",
                START + timedelta(hours=1),
                contract_id=f"c{n}",
                milestone_id=f"m{n}",
                released_by="client",
            )
        )
    late = START + timedelta(days=60)
    tick = envelope("tick-late", "deadline.tick", late)
    disputes = [
        envelope(
            f"c{n}-dispute",
            "dispute.opened",
            late - timedelta(days=1),
            dispute_id=f"d{n}",
            contract_id=f"c{n}",
            target_id=f"m{n}",
            reason="the work is not what was agreed",
        )
        for n in range(CONTRACTS)
    ]
    lines += [line for n, line in enumerate(disputes) if n % 2 == 0]
    lines.append(tick)
    lines += [line for n, line in enumerate(disputes) if n % 2 == 1]

    wait_settled(runtime.engine, publish(rabbit_url, lines))

    assert_same_as_replay(runtime, lines, sqlite_engine)


def test_a_second_body_of_an_event_id_is_dead_lettered_and_the_first_one_stands(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    runtime = start_workers()
    lines: list[str] = []
    for n in range(CONTRACTS):
        lines += funded_contract(n)
        first = envelope(
            f"c{n}-refund",
            "refund.requested",
            START + timedelta(hours=1),
            request_id=f"r{n}",
            contract_id=f"c{n}",
            target_id=f"m{n}",
            amount_minor=1_000,
            reason="first",
        )
        lines += [first, first.replace('"amount_minor": 1000', '"amount_minor": 2000')]

    wait_settled(runtime.engine, publish(rabbit_url, lines))

    assert_same_as_replay(runtime, lines, sqlite_engine)
    letters = live_outcome(runtime.engine).dead_letters
    assert letters == {f"c{n}-refund": "idempotency_conflict" for n in range(CONTRACTS)}


def test_an_event_waiting_for_its_subject_holds_back_its_key_and_nothing_else(
    start_workers: Callable[..., Runtime], rabbit_url: str, sqlite_engine: Engine
) -> None:
    """Chargebacks arrive before the payments they name: each waits (its key parked) and so
    does its resolution, while 100 contracts' events flow past; once the payments come, every
    chargeback is applied, then its resolution."""
    runtime = start_workers(unknown_subject_retry_seconds=120)
    chargebacks: list[str] = []
    for n in range(CONTRACTS):
        chargebacks += [
            envelope(
                f"cb{n}-open",
                "chargeback.opened",
                START + timedelta(hours=3),
                chargeback_id=f"cb{n}",
                payment_id=f"p{n}",
                amount_minor=10_000 + n,
                issuer_fee_minor=1_500,
            ),
            envelope(
                f"cb{n}-resolved",
                "chargeback.resolved",
                START + timedelta(hours=4),
                chargeback_id=f"cb{n}",
                outcome="client_lost",
            ),
        ]
    others = [line for n in range(CONTRACTS, 2 * CONTRACTS) for line in funded_contract(n)]
    payments = [line for n in range(CONTRACTS) for line in funded_contract(n)]

    sent = publish(rabbit_url, chargebacks + others)
    wait_until(lambda: _done(runtime.engine, "-work") == CONTRACTS, "the other contracts")
    with runtime.engine.connect() as conn:
        parked = conn.execute(select(parked_keys.c.ordering_key)).scalars().all()
    assert sorted(parked) == sorted(f"cb{n}" for n in range(CONTRACTS))

    sent += publish(rabbit_url, payments)
    wait_settled(runtime.engine, sent)

    with runtime.engine.connect() as conn:
        order = dict(
            conn.execute(
                select(event_log.c.event_id, applied_steps.c.step).join(
                    applied_steps, applied_steps.c.log_seq == event_log.c.seq
                )
            ).all()
        )
        results = dict(conn.execute(select(inbox.c.event_id, inbox.c.result)).all())
    for n in range(CONTRACTS):
        assert results[f"cb{n}-open"] == "applied"
        assert order[f"cb{n}-open"] < order[f"cb{n}-resolved"]
        assert order[f"c{n}-fund"] < order[f"cb{n}-open"]
    # In publication order the payments come last: what the chargebacks waited for is what
    # the replay of the order they took effect in books.
    applied_order = sorted(order, key=order.__getitem__)
    by_id = {json.loads(line)["event_id"]: line for line in chargebacks + others + payments}
    assert_same_as_replay(runtime, [by_id[event_id] for event_id in applied_order], sqlite_engine)


def _done(engine: Engine, suffix: str) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(event_log.c.seq).where(
                    event_log.c.event_id.like(f"%{suffix}"), event_log.c.status == "done"
                )
            ).all()
        )


def test_verify_finds_a_balance_changed_behind_the_engines_back(
    start_workers: Callable[..., Runtime], rabbit_url: str, pg_url: str
) -> None:
    runtime = start_workers()
    lines = well_formed(EXAMPLES[0].read_text("utf-8").splitlines())
    wait_settled(runtime.engine, publish(rabbit_url, lines))
    assert verify(runtime.engine, load_policies()).same

    with runtime.engine.begin() as conn:
        conn.execute(
            update(balances)
            .where(balances.c.posted_credits > 0)
            .values(posted_credits=balances.c.posted_credits + 100)
        )

    result = verify(runtime.engine, load_policies())
    assert not result.same
    assert any(line.startswith("balance ") for line in result.differences)


def test_a_producer_publishing_a_tick_is_refused(
    start_workers: Callable[..., Runtime], rabbit_url: str
) -> None:
    """Ticks are the engine's own: from another broker user, `unauthorized_producer`."""
    runtime = start_workers(producers_file=None)
    tick = envelope("tick-forged", "deadline.tick", datetime(2099, 1, 1, tzinfo=UTC))
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish_raw(tick.encode(), routing_key="deadline.tick", user_id=None)
    wait_until(lambda: bool(live_outcome(runtime.engine).dead_letters), "the dead letter")
    assert live_outcome(runtime.engine).dead_letters == {"tick-forged": "unauthorized_producer"}
