"""The composition root: settings in, a wired engine out, and the loops the commands run.

A worker process runs three things: the intake consumer (RabbitMQ only: the embedded mode
submits envelopes in-process), Dramatiq's `Worker` threads that take the nudges and drain
partitions, and a sweeper that nudges whatever work it finds waiting (`workers.intake`). It
runs Dramatiq's `Worker` in this process, not the `dramatiq` command: the embedded default,
`recourse run` and the tests then share one code path, and the process keeps its own metrics
registry. `--processes N` starts N such processes (spawned, each with its own connections),
restarts one that dies, and gives worker number i the metrics port METRICS_PORT + i (or the
worker's default port + i: `workers.metrics_ports`).
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from dramatiq import Broker, Worker
from sqlalchemy import Connection, Engine

from messages import Envelope
from messages.publisher import EventPublisher
from policy.config import PolicySet, load_policies
from scheduler.clock import Clock
from workers.actors import APPLY_QUEUE, Actors, Nudger, declare_actors
from workers.broker import build_broker
from workers.database import make_engine, migrate
from workers.intake.barrier import Barrier
from workers.intake.consumer import IntakeConsumer
from workers.intake.drain import Drainer, RetryBudget
from workers.intake.producers import Producers, load_producers
from workers.intake.service import Intake
from workers.intake.sweeper import Sweeper
from workers.metrics import WORKER, BacklogCollector, EngineMetrics, MetricsServer, serve_metrics
from workers.metrics_ports import metrics_port
from workers.relay import (
    MemorySink,
    NotificationSink,
    OutboxNotification,
    OutboxRelay,
    RabbitNotificationSink,
)
from workers.settings import Settings, load_settings
from workers.tick_publisher import TickPublisher, leader_lock

log = structlog.get_logger(__name__)

WORKER_TIMEOUT_MS = 1000
SHUTDOWN_TIMEOUT_MS = 30_000
CHILD_STOP_TIMEOUT_S = 40.0


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    policies: PolicySet
    metrics: EngineMetrics
    broker: Broker
    actors: Actors
    nudger: Nudger
    producers: Producers
    intake: Intake
    drainer: Drainer
    barrier: Barrier
    closers: list[Callable[[], None]] = field(default_factory=list)
    """Connections opened for the relay and the scheduler, closed with the runtime."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        engine: Engine | None = None,
        metrics: EngineMetrics | None = None,
    ) -> Runtime:
        engine = engine or make_engine(settings.database_url)
        metrics = metrics or EngineMetrics()
        policies = load_policies(settings.policy_file, settings.default_policy)
        producers = load_producers(settings.producers_file, settings.engine_user)
        broker = build_broker(settings, metrics)
        nudger = Nudger()
        drainer = Drainer(
            engine,
            policies,
            budget=RetryBudget(
                unknown_subject_seconds=settings.unknown_subject_retry_seconds,
                error_max_retries=settings.error_max_retries,
                min_backoff_ms=settings.retry_min_backoff_ms,
                max_backoff_ms=settings.retry_max_backoff_ms,
            ),
            retry_later=nudger.retry_later,
            metrics=metrics,
            batch_size=settings.apply_batch_size,
        )
        barrier = Barrier(
            engine,
            policies,
            on_fired=lambda: nudger.nudge(drainer.partitions_with_work()),
            metrics=metrics,
        )
        nudger.actors = declare_actors(broker, drainer, barrier)

        def apply_arrived(
            conn: Connection, touched: set[int], events: dict[int, Envelope]
        ) -> set[int]:
            return drainer.apply_arrived(conn, touched, events, fire_tick=barrier.fire_in)

        return cls(
            settings=settings,
            engine=engine,
            policies=policies,
            metrics=metrics,
            broker=broker,
            actors=nudger.actors,
            nudger=nudger,
            producers=producers,
            intake=Intake(
                engine,
                producers,
                nudge=nudger.nudge,
                apply_arrived=apply_arrived if settings.apply_on_intake else None,
                metrics=metrics,
            ),
            drainer=drainer,
            barrier=barrier,
        )

    @property
    def embedded(self) -> bool:
        return not self.settings.broker_url

    def start_worker(
        self, threads: int | None = None, *, timeout_ms: int = WORKER_TIMEOUT_MS
    ) -> WorkerHandle:
        """Start the intake consumer (with a broker), Dramatiq's worker threads on the nudges,
        and the sweeper. `timeout_ms` is how long an idle thread waits before it looks again:
        also how often delayed nudges are moved back to their queue, and how long a stop may
        take."""
        worker = Worker(
            self.broker,
            queues={APPLY_QUEUE},
            worker_threads=threads or self.settings.worker_threads,
            worker_timeout=timeout_ms,
        )
        worker.start()
        services = Services()
        consumer = None
        if self.settings.broker_url:
            consumer = IntakeConsumer(
                self.settings.broker_url, self.intake, batch_size=self.settings.intake_batch_size
            )
            services.spawn("intake", consumer.run)
        sweeper = Sweeper(self.drainer, self.nudger, interval_s=self.settings.sweep_seconds)
        services.spawn("sweeper", sweeper.run)
        return WorkerHandle(worker, services, consumer)

    def submit(self, envelope: dict[str, Any] | str | bytes) -> None:
        """Take one envelope in-process, as the engine's own user (embedded mode, tests)."""
        body = envelope if isinstance(envelope, str | bytes) else json.dumps(envelope)
        self.intake.submit(body)

    def notification_sink(self) -> NotificationSink:
        if self.settings.broker_url:
            sink = RabbitNotificationSink(self.settings.broker_url)
            self.closers.append(sink.close)
            return sink
        return MemorySink(callback=_log_notification, keep=False)

    def relay(self, sink: NotificationSink | None = None) -> OutboxRelay:
        return OutboxRelay(
            self.engine,
            sink or self.notification_sink(),
            batch_size=self.settings.relay_batch_size,
            metrics=self.metrics,
        )

    def tick_publisher(self, clock: Clock | None = None) -> TickPublisher:
        publish: Callable[[dict[str, Any]], object]
        if self.settings.broker_url:
            publisher = EventPublisher(self.settings.broker_url)
            self.closers.append(publisher.close)
            publish = publisher.publish
        else:
            publish = self.submit
        return TickPublisher(
            leader_lock(self.engine),
            publish,
            clock=clock,
            interval_seconds=self.settings.tick_interval_seconds,
            lateness_seconds=self.settings.tick_lateness_seconds,
            metrics=self.metrics,
        )

    def serve_metrics(self, port: int | None = None) -> MetricsServer | None:
        chosen = (
            metrics_port(self.settings.metrics_port, self.metrics.roles) if port is None else port
        )
        return serve_metrics(
            self.metrics,
            chosen,
            host=self.settings.metrics_host,
            backlog=BacklogCollector(self.engine),
        )

    def close(self) -> None:
        for close in self.closers:
            close()
        self.broker.close()
        self.engine.dispose()


def _log_notification(notification: OutboxNotification) -> None:
    log.info(
        "notification.published",
        notification_id=notification.notification_id,
        notification_type=notification.type,
    )


@dataclass
class WorkerHandle:
    """A started worker: Dramatiq's threads, the intake consumer and the sweeper."""

    worker: Worker
    services: Services
    consumer: IntakeConsumer | None

    def dead_threads(self) -> list[str]:
        """The names of the threads this worker needs that are no longer running: a worker
        with any is better restarted by its supervisor than left half alive."""
        threads: list[threading.Thread] = [
            *self.services.threads,
            *self.worker.workers,
            *self.worker.consumers.values(),
        ]
        return [thread.name for thread in threads if not thread.is_alive()]

    def stop(self, timeout: int = SHUTDOWN_TIMEOUT_MS) -> None:
        # The intake first: nothing new is appended while the threads finish their batches.
        self.services.join()
        self.worker.stop(timeout=timeout)


@dataclass
class Services:
    """Loops that run in threads until `stop` is set, and what to close afterwards."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def spawn(self, name: str, loop: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=loop, args=(self.stop,), name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self, timeout_s: float = 30.0) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)


def stop_on_signals(stop: threading.Event) -> None:
    """SIGINT and SIGTERM set `stop`: the loops finish their current step and return."""

    def handle(signum: int, _frame: object) -> None:
        log.info("shutdown.requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def wait_for(stop: threading.Event) -> None:
    # A bounded wait in a loop keeps the main thread responsive to signals on every platform.
    while not stop.wait(0.5):
        pass


class WorkerDied(RuntimeError):
    """A thread the worker needs stopped; the process exits non-zero to be restarted."""


def run_worker(runtime: Runtime, stop: threading.Event, *, threads: int | None = None) -> None:
    """Take in, drain and sweep until `stop` is set, then stop gracefully. Raises `WorkerDied`
    when one of its threads has stopped, so that its supervisor restarts the process."""
    worker = runtime.start_worker(threads)
    log.info("worker.started", threads=threads or runtime.settings.worker_threads)
    try:
        while not stop.wait(0.5):
            dead = worker.dead_threads()
            if dead:
                log.error("worker.thread_died", threads=dead)
                raise WorkerDied(f"threads stopped: {', '.join(dead)}")
    finally:
        worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
        log.info("worker.stopped")


def run_all(
    runtime: Runtime,
    stop: threading.Event,
    *,
    threads: int | None = None,
    sink: NotificationSink | None = None,
    clock: Clock | None = None,
    timeout_ms: int = WORKER_TIMEOUT_MS,
) -> None:
    """Worker, relay and scheduler in one process (`recourse run`), until `stop` is set."""
    if runtime.engine.dialect.name == "sqlite":
        # The embedded default needs no separate `recourse migrate`.
        migrate(runtime.engine)
    worker = runtime.start_worker(threads, timeout_ms=timeout_ms)
    services = Services(stop=stop)
    relay = runtime.relay(sink)
    services.spawn(
        "relay", lambda event: relay.run(event, idle_seconds=runtime.settings.relay_idle_seconds)
    )
    services.spawn("scheduler", runtime.tick_publisher(clock).run)
    log.info("engine.started", embedded=runtime.embedded)
    try:
        wait_for(stop)
    finally:
        services.join()
        worker.stop(timeout=SHUTDOWN_TIMEOUT_MS)
        try:
            # What the last events wrote after the relay's final batch.
            relay.drain()
        except Exception:
            log.exception("relay.final_drain_failed")
        log.info("engine.stopped")


def _worker_process(threads: int, metrics_port: int) -> None:
    """The body of one spawned worker process (`--processes N`)."""
    runtime, stop = from_environment()
    runtime.metrics.keep_only("worker")
    server = runtime.serve_metrics(metrics_port)
    try:
        run_worker(runtime, stop, threads=threads)
    finally:
        if server is not None:
            server.close()
        runtime.close()


def supervise_workers(
    processes: int, threads: int, metrics_port: int, stop: threading.Event
) -> None:
    """Run `processes` worker processes until `stop` is set; restart any that dies."""
    context = multiprocessing.get_context("spawn")

    def start(index: int) -> Any:
        port = metrics_port + index if metrics_port else 0
        child = context.Process(
            target=_worker_process, args=(threads, port), name=f"recourse-worker-{index}"
        )
        child.start()
        return child

    children = [start(index) for index in range(processes)]
    try:
        while not stop.wait(1.0):
            for index, child in enumerate(children):
                if not child.is_alive():
                    log.warning("worker.process_died", index=index, exitcode=child.exitcode)
                    children[index] = start(index)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.join(CHILD_STOP_TIMEOUT_S)
            if child.is_alive():
                child.kill()


def from_environment() -> tuple[Runtime, threading.Event]:
    """What every long-running command starts with: logging, a stop event wired to SIGINT and
    SIGTERM, and the runtime the environment describes."""
    settings, stop = _started()
    return Runtime.build(settings), stop


def _started() -> tuple[Settings, threading.Event]:
    """The settings, with logging configured from them, and a stop event that SIGINT and
    SIGTERM set."""
    from workers.logging import configure_logging

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    stop = threading.Event()
    stop_on_signals(stop)
    return settings, stop


def serve_until_done(runtime: Runtime, body: Callable[[], None]) -> None:
    """Run `body` with the metrics endpoint up, then close everything the runtime opened."""
    server = runtime.serve_metrics()
    try:
        body()
    finally:
        if server is not None:
            server.close()
        runtime.close()


def supervise_from_environment(processes: int, threads: int | None) -> None:
    """`recourse worker --processes N`: the same start as `from_environment`, then the
    supervisor of N worker processes in place of one runtime."""
    settings, stop = _started()
    first_port = metrics_port(settings.metrics_port, frozenset({WORKER}))
    supervise_workers(processes, threads or settings.worker_threads, first_port, stop)
