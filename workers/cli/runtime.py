"""`recourse worker`, `relay`, `scheduler`, `run` and `health`: the long-running processes.

Each builds its runtime from the environment (workers.runtime), runs until SIGINT or SIGTERM,
and serves Prometheus metrics on METRICS_PORT (0: none).
"""

from __future__ import annotations

import json

import typer

from workers.health import check_url
from workers.operator.errors import UsageProblem
from workers.preflight import check_servers
from workers.runtime import (
    from_environment,
    run_all,
    run_worker,
    serve_until_done,
    supervise_from_environment,
)
from workers.settings import load_settings

app = typer.Typer()


@app.command()
def worker(
    threads: int | None = typer.Option(
        None, "--threads", "-t", min=1, help="Threads per process (default: WORKER_THREADS)."
    ),
    processes: int = typer.Option(
        1, "--processes", "-p", min=1, help="Worker processes; process i serves METRICS_PORT + i."
    ),
) -> None:
    """Take in the events of refunds.events and apply them in order with worker threads.

    Each worker process runs the intake consumer (one is active at a time), Dramatiq's worker
    threads that drain partitions, and a sweeper; with --processes N this process supervises N
    spawned worker processes and restarts any that dies. Exits 1 at once when the database or
    the broker cannot be used, and when a thread it needs has stopped.
    """
    _require_broker("worker")
    _check_servers()
    if processes > 1:
        supervise_from_environment(processes, threads)
        return
    runtime, stop = from_environment()
    runtime.metrics.keep_only("worker")
    serve_until_done(runtime, lambda: run_worker(runtime, stop, threads=threads))


def _require_broker(command: str) -> None:
    """A worker or a scheduler of its own needs RabbitMQ: the StubBroker lives in one process."""
    if not load_settings().broker_url:
        raise UsageProblem(
            f"`recourse {command}` needs BROKER_URL (the embedded StubBroker is in-process)",
            "set BROKER_URL to RabbitMQ, or run worker, relay and scheduler together with "
            "`recourse run`",
        )


@app.command()
def relay() -> None:
    """Publish committed notifications from the outbox to the refunds.notifications exchange.

    Exits 1 at once when the database or the broker cannot be used.
    """
    _check_servers()
    runtime, stop = from_environment()
    runtime.metrics.keep_only("relay")
    outbox_relay = runtime.relay()
    idle = runtime.settings.relay_idle_seconds
    serve_until_done(runtime, lambda: outbox_relay.run(stop, idle_seconds=idle))


@app.command()
def scheduler() -> None:
    """Publish deadline.tick every TICK_INTERVAL_SECONDS; one instance active (advisory lock).

    Exits 1 at once when the database or the broker cannot be used.
    """
    _require_broker("scheduler")
    _check_servers()
    runtime, stop = from_environment()
    runtime.metrics.keep_only("scheduler")
    publisher = runtime.tick_publisher()
    serve_until_done(runtime, lambda: publisher.run(stop))


def _check_servers(*, sqlite_schema: bool = True) -> None:
    """Before a long-running process starts: its database (migrated) and broker answer."""
    check_servers(load_settings(), sqlite_schema=sqlite_schema)


@app.command()
def run(
    threads: int | None = typer.Option(
        None, "--threads", "-t", min=1, help="Worker threads (default: WORKER_THREADS)."
    ),
) -> None:
    """Worker, relay and scheduler in one process: the embedded default or a small deployment."""
    # On SQLite (the embedded default) `run` creates its own schema.
    _check_servers(sqlite_schema=False)
    runtime, stop = from_environment()
    serve_until_done(runtime, lambda: run_all(runtime, stop, threads=threads))


@app.command()
def health(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    max_pending_seconds: float = typer.Option(
        120.0,
        "--max-pending-seconds",
        min=0,
        help="Fail when an event not held back by a parked key has waited longer than this.",
    ),
) -> None:
    """Check the database, the intake's backlog, the broker and that a worker consumes
    refunds.intake; exit 1 when any check fails."""
    settings = load_settings()
    checks = check_url(
        settings.database_url, settings.broker_url, max_pending_seconds=max_pending_seconds
    )
    ok = all(check.ok for check in checks)
    if as_json:
        report = {"ok": ok, "checks": [check.as_json() for check in checks]}
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        for check in checks:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if not ok:
        raise typer.Exit(1)
