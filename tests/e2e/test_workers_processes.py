"""The engine as it is deployed: `recourse worker`, `recourse relay` and two `recourse scheduler`
processes against PostgreSQL and RabbitMQ. Events go in with `recourse publish`,
notifications come out of the exchange, ticks keep coming when the leading scheduler is
killed, and every process stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import Engine, func, select

from messages.publisher import EventPublisher
from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.tables import inbox, outbox
from tests.e2e.faults.processes import free_port, scrape

pytestmark = [pytest.mark.e2e, pytest.mark.rabbitmq, pytest.mark.postgres]

STORY = Path(__file__).parents[1] / "data" / "workers-story.jsonl"
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


def story_ids() -> set[str]:
    return {json.loads(line)["event_id"] for line in STORY.read_text("utf-8").splitlines()}


def test_the_deployed_processes_run_a_story_end_to_end(
    processes: Processes, pg_engine: Engine, rabbit_url: str, notifications: Any
) -> None:
    worker_port = free_port()
    scheduler_ports = {"scheduler-a": free_port(), "scheduler-b": free_port()}
    # One thread: the story's events of one contract depend on their order (work started
    # before or after a refund request), and a single consumer thread keeps queue order.
    processes.start("worker", "worker", "--threads", "1", metrics_port=worker_port)
    processes.start("relay", "relay")
    processes.start("scheduler-a", "scheduler", metrics_port=scheduler_ports["scheduler-a"])
    wait_until(
        lambda: scrape(scheduler_ports["scheduler-a"], "recourse_scheduler_leader") == 1,
        "the first scheduler to lead",
    )
    processes.start("scheduler-b", "scheduler", metrics_port=scheduler_ports["scheduler-b"])
    # Up before anything is asserted of it: the story below can be handled faster than the
    # second scheduler starts its metrics endpoint.
    wait_until(
        lambda: scrape(scheduler_ports["scheduler-b"], "recourse_scheduler_leader") is not None,
        "the second scheduler to report",
    )

    published = processes.command("publish", str(STORY))
    assert published.returncode == 0, published.stderr
    with EventPublisher(rabbit_url) as publisher:
        publisher.publish_raw(b"not a dramatiq message")

    wanted = story_ids()
    handled = select(func.count()).select_from(inbox).where(inbox.c.event_id.in_(wanted))
    wait_until(lambda: count(pg_engine, handled) == len(wanted), "every story event handled")
    unsent = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    total = select(func.count()).select_from(outbox)

    def relayed() -> bool:
        depth = notifications.queue_declare("e2e-consumer", passive=True).method.message_count
        return count(pg_engine, unsent) == 0 and depth == count(pg_engine, total) > 0

    wait_until(relayed, "every notification on the exchange, once")

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

    # Each process exports its own role's series: the worker serves, but no scheduler gauge.
    assert scrape(worker_port, "process_start_time_seconds") is not None
    assert scrape(worker_port, "recourse_scheduler_leader") is None
    health = processes.command("health")
    assert health.returncode == 0, health.stdout + health.stderr
    letters = processes.command("dlq", "list", "--json")
    assert letters.returncode == 0, letters.stderr
    assert [json.loads(line)["reason"] for line in letters.stdout.splitlines()] == ["undecodable"]

    for name in ("worker", "relay", "scheduler-b"):
        processes.running[name].send_signal(signal.SIGTERM)
    for name in ("worker", "relay", "scheduler-b"):
        assert processes.running[name].wait(timeout=40) == 0, processes.log(name)
    assert "worker.stopped" in processes.log("worker")


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
