"""One fault run: start the engine's processes, drive the load while the faults strike, drain,
stop, and ask the oracle."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pika
from sqlalchemy import Engine, func, select

from messages.transport import NOTIFICATIONS_EXCHANGE
from policy.tables import outbox
from tests.e2e.faults.driver import Driver, DriverStats
from tests.e2e.faults.injectors import FaultRunner, Injection, schedule
from tests.e2e.faults.oracle import NOTIFICATIONS_QUEUE, WORK_QUEUES, Oracle, Verdict, expected_of
from tests.e2e.faults.poison import poison_messages
from tests.e2e.faults.processes import Cluster
from tests.e2e.faults.servers import (
    ensure_rabbit_running,
    patiently,
    queue_depths,
    vhost_of,
    with_application_name,
)
from tests.e2e.story_generator import Load, generate_load
from workers.database import make_engine, migrate

DRAIN_TIMEOUT_S = 180.0
LEADER_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class RunConfig:
    events: int
    contracts: int
    database_url: str
    broker_url: str
    scratch: Path
    seed: int = 8
    workers: int = 2
    threads: int = 4
    rounds: int = 1


@dataclass
class RunResult:
    config: RunConfig
    load: Load
    driver: DriverStats
    injections: list[Injection]
    verdict: Verdict
    drain_s: float = 0.0
    exit_codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems


def engine_settings(threads: int) -> dict[str, str]:
    """Short intervals, so that a run recovers in seconds rather than minutes."""
    return {
        "TICK_INTERVAL_SECONDS": "0.5",
        "WORKER_THREADS": str(threads),
        "UNKNOWN_SUBJECT_RETRY_SECONDS": "300",
        "RETRY_MIN_BACKOFF_MS": "50",
        "RETRY_MAX_BACKOFF_MS": "1000",
        "RELAY_IDLE_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
    }


def bind_consumer(broker_url: str) -> None:
    """A durable queue on every notification, there before the relay publishes anything."""
    connection = pika.BlockingConnection(pika.URLParameters(broker_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(NOTIFICATIONS_EXCHANGE, exchange_type="topic", durable=True)
        channel.queue_declare(NOTIFICATIONS_QUEUE, durable=True)
        channel.queue_bind(NOTIFICATIONS_QUEUE, NOTIFICATIONS_EXCHANGE, routing_key="#")
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.2)


def drained(engine: Engine, vhost: str) -> bool:
    depths = patiently(lambda: queue_depths(vhost))
    if any(depths[name].total for name in WORK_QUEUES if name in depths):
        return False
    with engine.connect() as conn:
        unsent = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()
    return int(unsent) == 0


def run_faults(config: RunConfig) -> RunResult:
    load = generate_load(config.events, config.contracts, config.seed)
    poison = poison_messages()
    expected = expected_of(load)
    vhost = vhost_of(config.broker_url)
    engine = make_engine(with_application_name(config.database_url, "fault-driver"))
    migrate(engine)
    patiently(lambda: bind_consumer(config.broker_url))
    logs = config.scratch / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(config.database_url, config.broker_url, logs, engine_settings(config.threads))
    try:
        for _ in range(config.workers):
            cluster.start("worker")
        cluster.start("relay")
        cluster.start("scheduler")
        cluster.start("scheduler")
        cluster.wait_ready()
        wait_for(
            lambda: any(item.leading() for item in cluster.running("scheduler")),
            "a scheduler to lead",
            LEADER_WAIT_S,
        )
        driver = Driver(load, config.broker_url, engine, config.seed, poison)
        runner = FaultRunner(
            cluster,
            engine,
            config.broker_url,
            driver.in_flight.snapshot,
            schedule(config.rounds),
            config.scratch,
            config.seed,
        )
        driver.on_progress = runner.on_progress
        stats = driver.run()
        runner.finish()
        result = RunResult(config, load, stats, runner.injections, Verdict())
        began = time.monotonic()
        result.exit_codes.update(cluster.stop_role("scheduler"))
        wait_for(lambda: drained(engine, vhost), "queues and outbox to drain", DRAIN_TIMEOUT_S)
        result.drain_s = time.monotonic() - began
        for role in ("worker", "relay"):
            result.exit_codes.update(cluster.stop_role(role))
        result.problems.extend(
            f"{name} exited {code}" for name, code in result.exit_codes.items() if code != 0
        )
        result.problems.extend(
            f"{item.fault} at {item.at_progress:.0%}: {item.problem}"
            for item in result.injections
            if item.problem
        )
        result.verdict = Oracle(load, expected, poison).judge(engine, config.broker_url, vhost)
        return result
    finally:
        cluster.kill_all()
        ensure_rabbit_running()
        engine.dispose()
