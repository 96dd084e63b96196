"""`python -m tests.e2e.faults --events N --contracts M`: a fault run at any scale.

It creates its own PostgreSQL database and RabbitMQ vhost (dropped afterwards), runs the
engine's processes, drives N events over M contracts from four publishers while every fault
strikes `--rounds` times, prints the results table of docs/reliability.md and the oracle's
findings, and exits 1 when the books differ from a replay of the events in the order they were
published, or anything was lost, duplicated or left behind.

Needs PostgreSQL (RECOURSE_TEST_PG, default postgres@127.0.0.1:5432) and RabbitMQ on this
machine with `rabbitmqctl`. `--broker-restart` adds a restart of the RabbitMQ application to
each round: it stops the machine's broker for a few seconds, for everyone.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from tests.e2e.faults.report import summary, table
from tests.e2e.faults.run import RunConfig, run_faults
from tests.e2e.faults.servers import scratch_database, scratch_vhost

PG_ADMIN_URL = os.environ.get(
    "RECOURSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RABBIT_HOST = os.environ.get("RECOURSE_TEST_RABBIT_HOST", "127.0.0.1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.faults", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--contracts", type=int, default=500)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="Times each fault strikes.")
    parser.add_argument("--workers", type=int, default=2, help="Worker processes.")
    parser.add_argument("--threads", type=int, default=4, help="Threads per worker.")
    parser.add_argument(
        "--broker-restart", action="store_true", help="Restart RabbitMQ once a round."
    )
    parser.add_argument("--keep", type=Path, help="Keep the processes' logs in this folder.")
    args = parser.parse_args(argv)
    # A run stopped with SIGTERM still drops its database and vhost and restarts RabbitMQ.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="recourse-faults-") as scratch:
        folder = args.keep or Path(scratch)
        with scratch_database(PG_ADMIN_URL) as database_url, scratch_vhost(RABBIT_HOST) as url:
            result = run_faults(
                RunConfig(
                    events=args.events,
                    contracts=args.contracts,
                    database_url=database_url,
                    broker_url=url,
                    scratch=folder,
                    seed=args.seed,
                    workers=args.workers,
                    threads=args.threads,
                    rounds=args.rounds,
                    broker_restart=args.broker_restart,
                )
            )
    print(table(result))
    print()
    print(summary(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
