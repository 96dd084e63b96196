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

import multiprocessing
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika

from bench import workload
from bench.cpu import CpuMeter
from bench.deployment import WorkerShape, encode, publish_all, running, wait_handled
from bench.reference import ReferenceResult, postgres_reference
from bench.results import BenchResult
from bench.servers import pg_database, rabbit_vhost
from messages.transport import EVENTS_QUEUE
from workers.database import make_engine, migrate

GOAL_RATIO = 0.5
READY_TIMEOUT_S = 60.0
PUBLISHERS = 2


def wait_consumers(broker_url: str, count: int, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until `count` consumers listen on the events queue (the workers are up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = pika.BlockingConnection(pika.URLParameters(broker_url))
            try:
                declared = connection.channel().queue_declare(EVENTS_QUEUE, passive=True)
                if declared.method.consumer_count >= count:
                    return
            finally:
                connection.close()
        except pika.exceptions.ChannelClosedByBroker:
            pass  # the queue is not declared yet
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {count} consumers on {EVENTS_QUEUE}")
        time.sleep(0.2)


def _publisher_share(envelope: dict[str, Any], publishers: int) -> int:
    """Which publisher sends `envelope`: every event of a contract (its disputes and requests
    too, whose ids carry the contract's number) goes through the same one; ticks through the
    first."""
    ids = [str(value) for key, value in envelope["data"].items() if key.endswith("_id")]
    numbers = [re.findall(r"\d+", value) for value in ids]
    found = [int(digits[-1]) for digits in numbers if digits]
    return found[0] % publishers if found else 0


def _publish_share(broker_url: str, events: int, index: int, publishers: int, ready: Any) -> None:
    share = [
        encode(envelope)
        for envelope in workload.events(events)
        if _publisher_share(envelope, publishers) == index
    ]
    ready.wait()
    publish_all(broker_url, share)


def publish_in_parallel(
    broker_url: str,
    events: int,
    publishers: int = PUBLISHERS,
    *,
    on_start: Callable[[], None] | None = None,
) -> tuple[float, float]:
    """Publish the workload from `publishers` processes; the seconds it took and the
    monotonic time the first publish could start (when `on_start` is called)."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(publishers + 1)
    children = [
        context.Process(target=_publish_share, args=(broker_url, events, index, publishers, ready))
        for index in range(publishers)
    ]
    for child in children:
        child.start()
    # The clock starts once every publisher has its messages encoded.
    ready.wait(timeout=READY_TIMEOUT_S)
    if on_start is not None:
        on_start()
    started = time.monotonic()
    for child in children:
        child.join()
    if any(child.exitcode for child in children):
        raise RuntimeError("a publisher failed")
    return time.monotonic() - started, started


@contextmanager
def worker_logs() -> Iterator[Path]:
    """A folder for the workers' logs, removed after a run that finished and kept after one that
    failed: a run that never sees its last events committed has them retrying (an event whose
    subject was not there yet goes back to the end of the queue), and only the log says which."""
    folder = Path(tempfile.mkdtemp(prefix="recourse-bench-workers-"))
    try:
        yield folder
    except Exception as exc:
        exc.add_note(f"the workers' logs are kept in {folder}")
        raise
    shutil.rmtree(folder, ignore_errors=True)


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
    measured = measure_reference(events, shape)
    reference = measured.per_second
    reference_cpu = measured.cpu.per_unit(events) if measured.cpu is not None else {}
    ratio = workers["events_per_s"] / reference
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
        },
        notes=[
            f"{shape.processes} worker processes x {shape.threads} threads;"
            f" reference on {shape.connections} connections",
            _cpu_note(workers["cpu_per_event"], reference_cpu),
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
