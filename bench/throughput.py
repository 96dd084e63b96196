"""End-to-end throughput through the real workers: events a second from the first publish to
the last committed ledger change.

`recourse worker --processes P --threads T` runs on a throwaway database and vhost; the
workload (`bench.workload`: funding, releases, refunds, disputes, ticks across many contracts)
is published with confirms by `messages.publisher.EventPublisher`, in order, from one process
per publisher; each contract's events stay with one publisher so their order holds. The run
ends when every event has its inbox row (applied or rejected, committed).

The reference is `bench.reference.postgres_reference` with P x T connections: the least
transaction an event could cost, with plain psycopg.
"""

from __future__ import annotations

from typing import Any

from bench import floor
from bench.cpu import CpuMeter
from bench.deployment import (
    WorkerShape,
    publish_all,
    publish_in_parallel,
    running,
    wait_consumers,
    wait_handled,
    worker_logs,
)
from bench.reference import ReferenceResult, postgres_reference
from bench.results import BenchResult
from bench.servers import pg_database, rabbit_vhost
from workers.database import make_engine, migrate

GOAL_RATIO = 0.5


def measure_workers(events: int, shape: WorkerShape) -> dict[str, Any]:
    """Events a second through the workers, publish to commit, and whose CPU they took."""
    meter = CpuMeter()
    with (
        pg_database() as database_url,
        rabbit_vhost() as broker_url,
        worker_logs() as logs,
        running(database_url, broker_url, logs, shape=shape) as engine_processes,
    ):
        engine = make_engine(database_url)
        try:
            # Publishers declare the queues; consumers come once the workers see them.
            publish_all(broker_url, [])
            wait_consumers(broker_url, shape.processes)
            publish_seconds, started = publish_in_parallel(broker_url, events, on_start=meter.start)
            finished = wait_handled(engine, events, timeout_s=max(120.0, events / 10))
            cpu = meter.stop([process.pid for process in engine_processes.processes.values()])
        finally:
            engine.dispose()
    seconds = finished - started
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "publish_s": round(publish_seconds, 3),
        "publish_per_s": round(events / publish_seconds, 1),
        "cpu_per_event": cpu.per_unit(events),
        "idle_share": cpu.idle_share,
    }


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
    transport_floor = floor.measure(events, shape)
    measured = measure_reference(events, shape)
    reference = measured.per_second
    reference_cpu = measured.cpu.per_unit(events) if measured.cpu is not None else {}
    ratio = workers["events_per_s"] / reference
    floor_ratio = transport_floor["events_per_s"] / reference
    notes = []
    if workers["publish_per_s"] < 1.2 * workers["events_per_s"]:
        notes.append("the publishers barely kept ahead: the figure may be theirs")
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
            "floor_events_per_s": transport_floor["events_per_s"],
            "floor_ratio": round(floor_ratio, 3),
            "floor_cpu_per_event": transport_floor["cpu_per_event"],
        },
        notes=[
            f"{shape.processes} worker processes x {shape.threads} threads;"
            f" reference on {shape.connections} connections",
            _cpu_note(workers["cpu_per_event"], reference_cpu),
            f"transport floor (Dramatiq actors doing only the reference transaction, bench.floor):"
            f" {transport_floor['events_per_s']:,.0f} events/s, ratio {floor_ratio:.2f};"
            f" the engine reaches {ratio / floor_ratio:.2f} of it",
            *notes,
        ],
    )


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
