"""The engine as it is deployed: `recourse worker` (one process, and two with `--processes`),
`recourse relay` and two `recourse scheduler` processes against PostgreSQL and RabbitMQ. A
history goes in with `recourse publish` and ends with the books, rejections, notifications
and dead letters of `recourse replay` of the same file; notifications come out of the
exchange, ticks keep coming when the leading scheduler is killed, and every process stops
cleanly on SIGTERM."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from ordered_driver import Outcome, live_outcome, settled
from sqlalchemy import Engine, func, select

from messages.publisher import EventPublisher
from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.config import load_policies
from policy.tables import inbox, outbox
from testbed.stories import Load, generate_load, ticks_for
from tests.e2e.faults.processes import free_port, scrape
from workers.intake.tables import dead_letters
from workers.verify import verify

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]

RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
WAIT_S = 60.0


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll `condition` until it holds; fail, naming `what`, after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.1)


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str, metrics_port: int = 0) -> subprocess.Popen[bytes]:
        env = {**self.env, "METRICS_PORT": str(metrics_port)}
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen([*RECOURSE, *args], env=env, stdout=log, stderr=log)
        self.running[name] = process
        return process

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*RECOURSE, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")


@pytest.fixture
def processes(pg_url: str, rabbit_url: str, tmp_path: Path) -> Iterator[Processes]:
    env = {
        **os.environ,
        "DATABASE_URL": pg_url,
        "BROKER_URL": rabbit_url,
        "TICK_INTERVAL_SECONDS": "0.5",
        "UNKNOWN_SUBJECT_RETRY_SECONDS": "60",
        "RETRY_MIN_BACKOFF_MS": "50",
        "RETRY_MAX_BACKOFF_MS": "1000",
        "LOG_FORMAT": "json",
    }
    started = Processes(env, tmp_path)
    yield started
    for process in started.running.values():
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def notifications(rabbit_url: str) -> Iterator[Any]:
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    channel = connection.channel()
    channel.exchange_declare(NOTIFICATIONS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare("e2e-consumer", durable=True)
    channel.queue_bind("e2e-consumer", NOTIFICATIONS_EXCHANGE, routing_key="#")
    yield channel
    connection.close()


def count(engine: Engine, query: Any) -> int:
    with engine.connect() as conn:
        found: int = conn.execute(query).scalar_one()
        return found


CONTRACT_KEYED = frozenset(
    {
        "contract.opened",
        "contract.closed",
        "milestone.funded",
        "work.started",
        "milestone.released",
        "hourly.invoice_paid",
        "refund.requested",
        "refund.approved",
        "refund.declined",
        "refund.escalated",
        "dispute.opened",
        "dispute.resolved",
        "dispute.evidence_added",
    }
)


def story_file(folder: Path) -> Path:
    """A generated history (`testbed.stories`) of the contracts' own events, with the
    load's ticks, in causal order.

    `recourse publish` sends a file at once on one channel. That books what its replay books
    when no story switches key (MESSAGES.md, "Ordering"), so the events ordered by another key
    than their contract's (add-ons, points, withdrawals, chargebacks, the processor's fee
    refunds) are left out: without withdrawals or claw-backs, the contracts of one client
    touch no balance in an order-dependent way. The load is dated from 2031, so the
    schedulers' wall-clock ticks fire none of its deadlines; the examples/ files, dated 2026,
    would be overtaken by them.
    """
    load = generate_load(200, 20, seed=5)
    stories = tuple(
        dataclasses.replace(
            story, events=tuple(event for event in story.events if event.type in CONTRACT_KEYED)
        )
        for story in load.stories
    )
    kept = tuple(story for story in stories if story.events)
    history = Load(kept, tuple(ticks_for(list(kept))), load.seed)
    path = folder / "history.jsonl"
    path.write_text("\n".join(history.causal_lines()) + "\n", encoding="utf-8")
    return path


def replayed(processes: Processes, path: Path) -> Outcome:
    """`recourse replay FILE --json`, in the shape of `ordered_driver.live_outcome`: an event
    whose subject never came is a dead letter live (see `ordered_driver.replay_outcome`)."""
    done = processes.command("replay", str(path), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    never = {
        item["event_id"] for item in report["rejections"] if item["reason"] == "unknown_subject"
    }
    assert report["dead_letters"] == []
    return Outcome(
        report["balances"],
        {
            item["notification_id"]: public(item)
            for item in report["notifications"]
            if item["notification_id"].split(":")[0] not in never
        },
        {
            item["event_id"]: item["reason"]
            for item in report["rejections"]
            if item["event_id"] not in never
        },
        dict.fromkeys(never, "unknown_subject"),
    )


def public(notification: dict[str, Any]) -> dict[str, Any]:
    keys = ("notification_id", "type", "occurred_at", "recipients", "data")
    return {key: notification[key] for key in keys}


@pytest.mark.parametrize("worker_processes", [1, 2], ids=["one-process", "two-processes"])
def test_the_deployed_processes_book_what_the_replay_of_a_published_file_books(
    processes: Processes,
    pg_engine: Engine,
    rabbit_url: str,
    notifications: Any,
    worker_processes: int,
) -> None:
    history = story_file(processes.logs)
    lines = history.read_text("utf-8").splitlines()
    worker_port = free_port() if worker_processes == 1 else free_port_pair()
    scheduler_ports = {"scheduler-a": free_port(), "scheduler-b": free_port()}
    processes.start(
        "worker", "worker", "--processes", str(worker_processes), metrics_port=worker_port
    )
    processes.start("relay", "relay")
    processes.start("scheduler-a", "scheduler", metrics_port=scheduler_ports["scheduler-a"])
    wait_until(
        lambda: scrape(scheduler_ports["scheduler-a"], "recourse_scheduler_leader") == 1,
        "the first scheduler to lead",
    )
    processes.start("scheduler-b", "scheduler", metrics_port=scheduler_ports["scheduler-b"])
    # Up before anything is asserted of it: the history below can be handled faster than the
    # second scheduler starts its metrics endpoint.
    wait_until(
        lambda: scrape(scheduler_ports["scheduler-b"], "recourse_scheduler_leader") is not None,
        "the second scheduler to report",
    )
    wait_until(
        lambda: all(
            scrape(worker_port + n, "process_start_time_seconds") is not None
            for n in range(worker_processes)
        ),
        "every worker process serving metrics",
    )

    published = processes.command("publish", str(history))
    assert published.returncode == 0, published.stderr
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish_raw(b"not an envelope", routing_key="e2e-poison")

    wanted = {json.loads(line)["event_id"] for line in lines}
    handled = select(func.count()).select_from(inbox).where(inbox.c.event_id.in_(wanted))
    wait_until(lambda: count(pg_engine, handled) == len(wanted), "every event handled", 120)
    wait_until(lambda: settled(pg_engine), "the event log to settle")
    unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    total = select(func.count()).select_from(outbox)

    def relayed() -> bool:
        depth = notifications.queue_declare("e2e-consumer", passive=True).method.message_count
        return count(pg_engine, unsent) == 0 and depth == count(pg_engine, total) > 0

    wait_until(relayed, "every notification on the exchange, once")

    live = live_outcome(pg_engine)
    expected = replayed(processes, history)
    assert live.balances == expected.balances
    assert live.rejections == expected.rejections
    assert live.notifications == expected.notifications
    # The replay dead-letters nothing; live, only the poison below, which has no event id.
    assert expected.dead_letters == {}
    assert verify(pg_engine, load_policies()).same
    with pg_engine.connect() as conn:
        letters = conn.execute(select(dead_letters.c.reason, dead_letters.c.routing_key)).all()
    assert [tuple(row) for row in letters] == [("malformed", "e2e-poison")]

    scheduler_ticks = (
        select(func.count())
        .select_from(inbox)
        .where(inbox.c.type == "deadline.tick", inbox.c.event_id.not_in(wanted))
    )
    wait_until(lambda: count(pg_engine, scheduler_ticks) >= 1, "a tick from the scheduler")
    assert scrape(scheduler_ports["scheduler-b"], "recourse_scheduler_leader") == 0

    processes.running["scheduler-a"].send_signal(signal.SIGKILL)
    wait_until(
        lambda: scrape(scheduler_ports["scheduler-b"], "recourse_scheduler_leader") == 1,
        "the second scheduler to take over",
    )
    before = count(pg_engine, scheduler_ticks)
    wait_until(lambda: count(pg_engine, scheduler_ticks) > before, "ticks after the takeover")
    # The wall-clock ticks (2026) fired nothing of the history (2031): still the replay's books.
    wait_until(lambda: settled(pg_engine), "the event log to settle")
    assert live_outcome(pg_engine).balances == expected.balances

    # Each process exports its own role's series: the worker serves, but no scheduler gauge.
    assert scrape(worker_port, "process_start_time_seconds") is not None
    assert scrape(worker_port, "recourse_scheduler_leader") is None
    health = processes.command("health")
    assert health.returncode == 0, health.stdout + health.stderr

    for name in ("worker", "relay", "scheduler-b"):
        processes.running[name].send_signal(signal.SIGTERM)
    for name in ("worker", "relay", "scheduler-b"):
        assert processes.running[name].wait(timeout=60) == 0, processes.log(name)
    assert processes.log("worker").count('"worker.stopped"') == worker_processes


def free_port_pair() -> int:
    """A port whose next one is free too: `--processes 2` serves METRICS_PORT and the next."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise AssertionError("no two consecutive free ports")


def spawned_children(parent: int) -> set[int]:
    """The worker processes `recourse worker --processes N` spawned (not its resource tracker)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    found = set()
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            found.add(int(child))
    return found


def test_a_multi_process_worker_replaces_a_dead_process_and_stops_on_sigterm(
    processes: Processes, pg_engine: Engine, rabbit_url: str
) -> None:
    port = free_port()
    parent = processes.start(
        "workers", "worker", "--processes", "2", "--threads", "2", metrics_port=port
    )
    wait_until(lambda: len(spawned_children(parent.pid)) == 2, "two worker processes")
    wait_until(
        lambda: all(scrape(p, "process_start_time_seconds") for p in (port, port + 1)),
        "both processes serving metrics on their own port",
    )
    first_children = spawned_children(parent.pid)
    victim = min(first_children)
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: victim not in (children := spawned_children(parent.pid)) and len(children) == 2,
        "a replacement process",
    )
    wait_until(
        lambda: all(scrape(p, "process_start_time_seconds") for p in (port, port + 1)),
        "the replacement serving metrics on the dead process's port",
    )

    opened = {
        "event_id": "mp-1",
        "type": "contract.opened",
        "occurred_at": "2026-03-02T09:00:00Z",
        "schema_version": 1,
        "data": {
            "contract_id": "mp-c1",
            "kind": "fixed",
            "client_id": "ana",
            "creator_id": "ben",
            "currency": "USD",
        },
    }
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish(opened)
    wait_until(
        lambda: count(pg_engine, select(func.count()).select_from(inbox)) == 1,
        "the event handled by the surviving processes",
    )

    last_children = spawned_children(parent.pid)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 0, processes.log("workers")
    assert not any(Path(f"/proc/{child}").exists() for child in last_children)
    assert processes.log("workers").count('"worker.stopped"') == 2
