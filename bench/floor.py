"""The transport's floor: the throughput benchmark's workload, publishers and worker shape, fed
to `bench.floor_worker` (Dramatiq actors that only run the reference transaction) instead of
the engine.

Its ratio to the reference is the most any engine on Dramatiq, pika and RabbitMQ could reach on
this machine with this shape: what the queue, the consumer, the acks and the confirms cost on
top of the same transaction. The engine's own ratio can only be read against it.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy.engine import make_url

from bench.cpu import CpuMeter
from bench.deployment import (
    EngineProcesses,
    WorkerShape,
    engine_env,
    publish_all,
    publish_in_parallel,
    wait_consumers,
    wait_handled,
    worker_logs,
)
from bench.reference import open_reference_accounts
from bench.servers import pg_database, rabbit_vhost
from workers.database import make_engine, migrate


def measure(events: int, shape: WorkerShape) -> dict[str, Any]:
    """Events a second through the floor's actors, publish to commit, and whose CPU they took."""
    meter = CpuMeter()
    with pg_database() as database_url, rabbit_vhost() as broker_url, worker_logs() as logs:
        engine = make_engine(database_url)
        processes = None
        try:
            migrate(engine)
            accounts = open_reference_accounts(engine)
            dsn = make_url(database_url).set(drivername="postgresql")
            env = engine_env(
                database_url,
                broker_url,
                FLOOR_DSN=dsn.render_as_string(hide_password=False),
                FLOOR_ACCOUNTS=",".join(str(account) for account in accounts),
            )
            processes = EngineProcesses(env, logs)
            worker = processes.start_command(
                "floor",
                [
                    sys.executable,
                    "-m",
                    "dramatiq",
                    "bench.floor_worker",
                    "--processes",
                    str(shape.processes),
                    "--threads",
                    str(shape.threads),
                ],
            )
            # Publishers declare the queues; consumers come once the workers see them.
            publish_all(broker_url, [])
            wait_consumers(broker_url, shape.processes)
            _, started = publish_in_parallel(broker_url, events, on_start=meter.start)
            finished = wait_handled(engine, events, timeout_s=max(120.0, events / 10))
            cpu = meter.stop([worker.pid])
        finally:
            if processes is not None:
                processes.close()
            engine.dispose()
    seconds = finished - started
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1),
        "cpu_per_event": cpu.per_unit(events),
    }
