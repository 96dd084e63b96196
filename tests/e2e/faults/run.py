"""One fault run: start the engine's processes, drive the load while the faults strike, drain,
stop, and ask the oracle to hold the books to a replay of the events in the order they were
published."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pika
from sqlalchemy import Engine

from messages.transport import NOTIFICATIONS_EXCHANGE
from testbed.stories import Load, generate_load
from tests.e2e.faults.driver import Driver, DriverStats
from tests.e2e.faults.injectors import TICK_LATENESS_S, FaultRunner, Injection, schedule
from tests.e2e.faults.oracle import NOTIFICATIONS_QUEUE, Oracle, Verdict, expected_of, leftovers
from tests.e2e.faults.poison import poison_messages
from tests.e2e.faults.processes import Cluster
from tests.e2e.faults.servers import (
    ensure_rabbit_running,
    patiently,
    vhost_of,
    with_application_name,
)
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
    broker_restart: bool = False
    """Restart the RabbitMQ application once a round: it stops the machine's only broker."""
    left_out: frozenset[str] = frozenset()
    """Faults of the round not injected (the CI run leaves out one: docs/reliability.md)."""


@dataclass
class RunResult:
    config: RunConfig
    load: Load
    driver: DriverStats
    injections: list[Injection]
    verdict: Verdict
    drain_s: float = 0.0
    replay_s: float = 0.0
    oracle_s: float = 0.0
    total_s: float = 0.0
    exit_codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.verdict.ok and not self.problems


def engine_settings(threads: int) -> dict[str, str]:
    """Short intervals, so that a run recovers in seconds rather than minutes.

    The schedulers tick on the wall clock (2026) with the default lateness, dated
    TICK_LATENESS_SECONDS earlier; the load is dated from 2031 on, so their ticks fire none of
    its deadlines and the replay, which does not hold them, stays exact. Only the load's own
    ticks, published by the driver, fire the load's deadlines.
    """
    return {
        "TICK_INTERVAL_SECONDS": "1",
        "TICK_LATENESS_SECONDS": str(TICK_LATENESS_S),
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
    """`refunds.intake` empty with nothing unacked, nothing pending in the event log, no
    parked key, no owed tick, every outbox row sent."""
    return not leftovers(engine, vhost)


def order_problems(load: Load, published: list[str]) -> list[str]:
    """The recorded publication order holds every event of the load exactly once."""
    wanted = {event.event_id for event in load.causal_events()}
    problems = []
    if len(published) != len(set(published)):
        problems.append("an original was recorded twice in the publication order")
    if set(published) != wanted:
        missing, extra = wanted - set(published), set(published) - wanted
        problems.append(
            f"the publication order misses {sorted(missing)[:5]} and adds {sorted(extra)[:5]}"
        )
    return problems


def run_faults(config: RunConfig) -> RunResult:
    started = time.monotonic()
    load = generate_load(config.events, config.contracts, config.seed)
    poison = poison_messages()
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
            schedule(config.rounds, broker_restart=config.broker_restart, left_out=config.left_out),
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
        published = driver.order.lines()
        result.problems.extend(
            order_problems(load, [event.event_id for event in driver.order.events()])
        )
        began = time.monotonic()
        expected = expected_of(published)
        result.replay_s = time.monotonic() - began
        began = time.monotonic()
        result.verdict = Oracle(load, expected, poison).judge(engine, config.broker_url, vhost)
        result.oracle_s = time.monotonic() - began
        result.total_s = time.monotonic() - started
        return result
    finally:
        cluster.kill_all()
        if config.broker_restart:
            ensure_rabbit_running()
        engine.dispose()
