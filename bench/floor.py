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

from bench.deployment import EngineProcesses, WorkerShape, engine_env, worker_logs
from bench.feeding import feed_and_time
from bench.reference import open_reference_accounts
from bench.servers import pg_database, rabbit_vhost
from workers.database import make_engine, migrate


def measure(events: int, shape: WorkerShape, *, backlog: bool = False) -> dict[str, Any]:
    """Events a second through the floor's actors, publish to commit (or draining a queued
    backlog), and whose CPU they took."""
    with pg_database() as database_url, rabbit_vhost() as broker_url, worker_logs() as logs:
        engine = make_engine(database_url)
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
            command = [
                sys.executable,
                "-m",
                "dramatiq",
                "bench.floor_worker",
                "--processes",
                str(shape.processes),
                "--threads",
                str(shape.threads),
            ]
            try:
                return feed_and_time(
                    engine,
                    broker_url,
                    events,
                    consumers=shape.processes,
                    start_consumers=lambda: [processes.start_command("floor", command).pid],
                    backlog=backlog,
                )
            finally:
                processes.close()
        finally:
            engine.dispose()
