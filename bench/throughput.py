"""End-to-end throughput through the real workers: events a second from the first publish to
the last committed ledger change.

`recourse worker --processes P --threads T` runs on a throwaway database and vhost; the
workload (`testbed.workload`: funding, releases, refunds, disputes, ticks across many contracts)
is published to the `refunds.events` exchange with confirms by
`messages.publisher.EventPublisher`, in order, from one process per publisher; each contract's
events stay with one publisher so their order holds. The run ends when no row of the event log
is pending any more (every event applied, rejected or dead-lettered, every tick fired,
committed). `APPLY_BATCH_SIZE` and `INTAKE_BATCH_SIZE` in the environment reach the workers,
and the result records them.

The reference is `bench.reference.postgres_reference` with P x T connections: the least
transaction an event could cost, with plain psycopg.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from typing import Any

from bench import floor
from bench.cpu import CpuMeter
from bench.deployment import WorkerShape, running, worker_logs
from bench.feeding import feed_and_time
from bench.reference import ReferenceResult, postgres_reference
from bench.results import BenchResult
from bench.servers import pg_database, rabbit_vhost
from workers.database import make_engine, migrate
from workers.settings import Settings

GOAL_RATIO = 0.5


def measure_workers(events: int, shape: WorkerShape, *, backlog: bool = False) -> dict[str, Any]:
    """Events a second through the workers, publish to commit (or draining a queued backlog),
    and whose CPU they took."""
    with (
        pg_database() as database_url,
        rabbit_vhost() as broker_url,
        worker_logs() as logs,
        ExitStack() as workers,
    ):
        engine = make_engine(database_url)

        def start_workers() -> list[int]:
            processes = workers.enter_context(running(database_url, broker_url, logs, shape=shape))
            return [process.pid for process in processes.processes.values()]

        try:
            return feed_and_time(
                engine,
                broker_url,
                events,
                consumers=shape.processes,
                start_consumers=start_workers,
                backlog=backlog,
            )
        finally:
            engine.dispose()


def measure_reference(transactions: int, shape: WorkerShape) -> ReferenceResult:
    with pg_database() as url:
        engine = make_engine(url)
        try:
            migrate(engine)
            return postgres_reference(
                engine,
                transactions=transactions,
                processes=shape.processes,
                threads=shape.threads,
                meter=CpuMeter(),
            )
        finally:
            engine.dispose()


def run(events: int, shape: WorkerShape) -> BenchResult:
    workers = measure_workers(events, shape)
    workers_backlog = measure_workers(events, shape, backlog=True)
    floor_live = floor.measure(events, shape)
    floor_backlog = floor.measure(events, shape, backlog=True)
    measured = measure_reference(events, shape)
    reference = measured.per_second
    reference_cpu = measured.cpu.per_unit(events) if measured.cpu is not None else {}
    ratio = workers["events_per_s"] / reference
    batches = batch_settings()

    def ratio_of(figures: dict[str, Any]) -> float:
        return round(float(figures["events_per_s"]) / reference, 3)

    notes = []
    for name, figures in (("the engine", workers), ("the floor", floor_live)):
        if figures["publish_per_s"] < 1.2 * figures["events_per_s"]:
            notes.append(f"the publishers barely kept ahead of {name}: the figure may be theirs")
    return BenchResult(
        name="throughput",
        figure=f"{workers['events_per_s']:,.0f} events/s",
        reference=f"psycopg loop {reference:,.0f} tx/s",
        ratio=ratio,
        goal=f"ratio >= {GOAL_RATIO}",
        met=ratio >= GOAL_RATIO,
        metrics=workers
        | shape.as_json()
        | {
            "connections": shape.connections,
            "reference_tx_per_s": round(reference, 1),
            "reference_cpu_per_tx": reference_cpu,
            "backlog": workers_backlog | {"ratio": ratio_of(workers_backlog)},
            "floor": floor_live | {"ratio": ratio_of(floor_live)},
            "floor_backlog": floor_backlog | {"ratio": ratio_of(floor_backlog)},
            "batch_settings": batches,
        },
        notes=[
            f"{shape.processes} worker processes x {shape.threads} threads;"
            f" reference on {shape.connections} connections;"
            + "".join(f" {name}={value}" for name, value in batches.items()),
            _cpu_note(workers["cpu_per_event"], reference_cpu),
            f"draining a queued backlog: {workers_backlog['events_per_s']:,.0f} events/s,"
            f" ratio {ratio_of(workers_backlog):.2f}",
            "transport floor (bench.floor: a plain consumer of refunds.intake that runs the"
            f" reference transaction on {shape.connections} connections and acks):"
            f" {floor_live['events_per_s']:,.0f} events/s live, ratio"
            f" {ratio_of(floor_live):.2f}; {floor_backlog['events_per_s']:,.0f} events/s"
            f" draining a backlog, ratio {ratio_of(floor_backlog):.2f}",
            *notes,
        ],
    )


def batch_settings() -> dict[str, str]:
    """The group-commit settings the workers run with: the environment's, else the engine's
    defaults."""
    fields = Settings.model_fields
    return {
        name: os.environ.get(name, f"{fields[name.lower()].default} (default)")
        for name in ("APPLY_BATCH_SIZE", "INTAKE_BATCH_SIZE", "APPLY_ON_INTAKE")
    }


def _cpu_note(event: dict[str, float], transaction: dict[str, float]) -> str:
    """Whose CPU an event took, beside the reference transaction's: with every core busy, the
    ratio is one total over the other."""
    return (
        f"CPU an event: {event['total_us']:,} us (workers {event['engine_us']:,},"
        f" PostgreSQL {event['postgresql_us']:,}, RabbitMQ {event['rabbitmq_us']:,},"
        f" publishers {event['benchmark_children_us']:,},"
        f" rest {event['rest_of_machine_us']:,}); a reference transaction:"
        f" {transaction.get('total_us', 0):,} us (psycopg loops"
        f" {transaction.get('benchmark_children_us', 0):,},"
        f" PostgreSQL {transaction.get('postgresql_us', 0):,})"
    )
