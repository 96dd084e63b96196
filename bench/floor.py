"""The transport's floor: the throughput benchmark's workload and publishers, fed to
`bench.floor_worker` (a plain consumer of `refunds.intake` that runs the reference transaction
for each message on as many connections as the workers hold, and acks) instead of the engine.

Its ratio to the reference is the most any engine behind the ordered intake's transport (the
`refunds.events` exchange, one queue with a single active consumer, confirms and acks) could
reach on this machine with this many connections. The engine's own ratio can only be read
against it. Before the ordered intake, the floor was Dramatiq actors on the old per-type
queues; the two floors measure different paths.
"""

from __future__ import annotations

import sys
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from bench.deployment import EngineProcesses, WorkerShape, engine_env, worker_logs
from bench.feeding import feed_and_time
from bench.reference import open_reference_accounts
from bench.servers import pg_database, rabbit_vhost
from policy.tables import inbox
from workers.database import make_engine, migrate


def transactions_done(engine: Engine) -> int:
    """Reference transactions committed: each writes one inbox row."""
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def measure(events: int, shape: WorkerShape, *, backlog: bool = False) -> dict[str, Any]:
    """Events a second through the floor's consumer, publish to commit (or draining a queued
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
                FLOOR_CONNECTIONS=str(shape.connections),
            )
            processes = EngineProcesses(env, logs)
            command = [sys.executable, "-m", "bench.floor_worker"]
            try:
                return feed_and_time(
                    engine,
                    broker_url,
                    events,
                    consumers=1,
                    start_consumers=lambda: [processes.start_command("floor", command).pid],
                    backlog=backlog,
                    committed=transactions_done,
                )
            finally:
                processes.close()
        finally:
            engine.dispose()
