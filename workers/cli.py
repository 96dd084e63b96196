"""The `recourse` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from messages.inbound import DisputeOutcome
from workers.operator.group import OneLineErrors, is_debug, set_debug
from workers.settings import load_settings

if TYPE_CHECKING:
    from messages.publisher import EventPublisher

app = typer.Typer(
    name="recourse",
    help="Refund, escrow and dispute engine for freelance marketplaces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        typer.echo(f"recourse {version('recourse')}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="On a failure, show the traceback instead of one line."
    ),
    _version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    set_debug(ctx, debug)


@app.command()
def migrate(
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was done as one JSON object."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Change nothing; exit 1 when the database is behind the code (deploy pipelines).",
    ),
    to: str | None = typer.Option(
        None,
        "--to",
        metavar="REVISION",
        help="Move one package's branch to REVISION, back (downgrade) or forward; "
        "`--check --json` lists the revisions.",
    ),
) -> None:
    """Create or upgrade the database schema to the newest revision; with BROKER_URL set, also
    declare the exchange producers publish to and the engine's intake queue behind it, so that
    producers can publish before the first worker starts."""
    import json

    from sqlalchemy import inspect

    from workers.database import current_revisions, make_engine
    from workers.database import migrate as run_migrations
    from workers.preflight import check_database
    from workers.schema_moves import move_to

    url = database_url or load_settings().database_url
    setting = "--db" if database_url else "DATABASE_URL"
    if check:
        _check_schema(url, setting, as_json=as_json)
        return
    check_database(url, setting=setting, schema=False)
    engine = make_engine(url)
    try:
        tables_before = set(inspect(engine).get_table_names())
        before = current_revisions(engine)
        moved = move_to(engine, to) if to else None
        if moved is None:
            run_migrations(engine)
        after = current_revisions(engine)
        created = sorted(set(inspect(engine).get_table_names()) - tables_before)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    action = "created" if not before else ("upgraded" if before != after else "unchanged")
    if moved is not None:
        action = moved
    broker_url = load_settings().broker_url
    if broker_url:
        from workers.intake.topology import declare_broker_topology

        declare_broker_topology(broker_url)
    if as_json:
        report = {
            "database": where,
            "action": action,
            "revisions_before": before,
            "revisions_after": after,
            "tables_created": created,
            "broker_declared": bool(broker_url),
        }
        typer.echo(json.dumps(report, indent=2, sort_keys=True))
    elif action == "created":
        typer.echo(
            f"created the schema on {where}: {len(created)} tables, revisions {', '.join(after)}"
        )
    elif action == "upgraded":
        typer.echo(
            f"upgraded the schema on {where} from {', '.join(before)} to {', '.join(after)}"
            + (f"; {len(created)} new tables" if created else "")
        )
    elif action == "downgraded":
        typer.echo(
            f"downgraded the schema on {where} from {', '.join(before)} to {', '.join(after)}"
        )
    else:
        typer.echo(f"the schema on {where} is already up to date ({', '.join(after)})")


def _check_schema(url: str, setting: str, *, as_json: bool) -> None:
    """`migrate --check`: say where the database is against the code; exit 1 when behind."""
    from workers.schema_moves import print_check

    if not print_check(url, setting, as_json=as_json):
        raise typer.Exit(1)


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines of events."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: a fresh SQLite file in a temporary folder)."
    ),
) -> None:
    """Feed a JSON Lines file of events through the handlers and print the outcome."""
    import json
    import tempfile

    from rich.console import Console

    from policy.config import load_policies
    from workers.database import make_engine, make_throwaway_engine
    from workers.database import migrate as run_migrations
    from workers.progress import progress_bar, shows_progress
    from workers.replay import replay_lines
    from workers.statement import print_statement

    settings = load_settings()
    policies = load_policies(settings.policy_file, settings.default_policy)
    with tempfile.TemporaryDirectory(prefix="recourse-replay-") as scratch:
        if database_url is None:
            # The temporary file goes away with the folder: no need to sync it to disk.
            engine = make_throwaway_engine(Path(scratch) / "replay.sqlite")
        else:
            engine = make_engine(database_url)
        run_migrations(engine)
        with file.open(encoding="utf-8") as handle:
            lines = handle.readlines()
        shown = shows_progress(as_json=as_json) and len(lines) >= PROGRESS_FROM_LINES
        with progress_bar("replaying", len(lines), shown=shown) as advance:
            report = replay_lines(
                engine,
                lines,
                policies,
                progress=advance,
                # A database given with --db may have other writers (operators, workers).
                own_database=database_url is None,
            )
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        print_statement(report, Console())


PROGRESS_FROM_LINES = 5000


@app.command()
def verify(
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
) -> None:
    """Apply the database's events again, in the order they took effect, on a scratch store,
    and compare every balance and transfer; exit 1 when they differ."""
    import json

    from policy.config import load_policies
    from workers.database import make_engine
    from workers.preflight import check_database
    from workers.progress import progress_bar, shows_progress
    from workers.verify import steps_to_verify
    from workers.verify import verify as verify_books

    settings = load_settings()
    url = database_url or settings.database_url
    check_database(url, setting="--db" if database_url else "DATABASE_URL")
    engine = make_engine(url)
    policies = load_policies(settings.policy_file, settings.default_policy)
    try:
        with progress_bar(
            "verifying", steps_to_verify(engine), shown=shows_progress(as_json=as_json)
        ) as advance:
            result = verify_books(engine, policies, progress=advance)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2, sort_keys=True))
    else:
        verdict = "the same books" if result.same else f"{result.differences_total} differences"
        typer.echo(
            f"{result.steps} steps applied again: {verdict} "
            f"({result.balances_compared} balances, {result.transfers_compared} transfers)"
        )
        for line in result.differences:
            typer.echo(f"  {line}")
    if not result.same:
        raise typer.Exit(1)


@app.command()
def audit(
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Prove the books: each currency sums to zero and every balance equals its entries.

    Exits 1, after printing the report, when anything is off.
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from ledger.audit import audit as audit_books
    from workers.database import make_engine
    from workers.preflight import check_database

    url = database_url or load_settings().database_url
    # A SQLite path that does not exist is an error, never a new empty file.
    check_database(url, setting="--db" if database_url else "DATABASE_URL")
    engine = make_engine(url)
    # One snapshot for every query, so writers committing meanwhile are not differences.
    snapshot = (
        engine.execution_options(isolation_level="REPEATABLE READ")
        if engine.dialect.name == "postgresql"
        else engine
    )
    with snapshot.connect() as conn, conn.begin():
        report = audit_books(conn)
    engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        console = Console()
        table = Table(title="Ledger audit", title_justify="left")
        table.add_column("currency")
        for heading in ("posted debits", "posted credits", "pending debits", "pending credits"):
            table.add_column(heading, justify="right")
        table.add_column("balanced")
        for totals in report.currencies:
            balanced = totals.posted_sum_minor == 0 and totals.pending_sum_minor == 0
            table.add_row(
                totals.currency,
                str(totals.posted_debits_minor),
                str(totals.posted_credits_minor),
                str(totals.pending_debits_minor),
                str(totals.pending_credits_minor),
                "yes" if balanced else "[red]NO[/red]",
            )
        console.print(table)
        for problem in report.problems:
            console.print(f"[red]problem:[/red] {problem}", highlight=False)
        verdict = (
            "[green]ok[/green]" if report.ok else f"[red]{len(report.problems)} problems[/red]"
        )
        console.print(
            f"{report.accounts_checked} accounts, {report.transfers_checked} transfers: {verdict}"
        )
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def schema(
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 if the files differ from the models."
    ),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where the documents live (default: messages/schemas)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as one JSON object."),
) -> None:
    """Generate the JSON Schema of every message and the AsyncAPI 3.0 document."""
    import json

    from messages.schema import SCHEMA_DIR, differences, write

    target = directory or SCHEMA_DIR
    if check:
        problems = differences(target)
        if as_json:
            report = {"directory": str(target), "ok": not problems, "differences": problems}
            typer.echo(json.dumps(report, indent=2, sort_keys=True))
        else:
            for problem in problems:
                typer.echo(problem, err=True)
            if problems:
                typer.echo(
                    f"error: {target} differs from the message models; "
                    "run `recourse schema` and commit the result",
                    err=True,
                )
            else:
                typer.echo(f"{target} matches the message models")
        if problems:
            raise typer.Exit(1)
        return
    changed = write(target)
    if as_json:
        written = {"directory": str(target), "changed": changed}
        typer.echo(json.dumps(written, indent=2, sort_keys=True))
        return
    typer.echo(f"{len(changed)} files written or removed in {target}")


@app.command()
def publish(
    file: str = typer.Argument(..., help="JSON Lines of envelopes, one a line; - reads stdin."),
    broker_url: str | None = typer.Option(
        None, "--broker", help="amqp:// URL of RabbitMQ (default: BROKER_URL)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: sent, and the refused lines."
    ),
) -> None:
    """Publish inbound events to the refunds.events exchange, with publisher confirms.

    Each well-formed line goes as MESSAGES.md's "Transport" says: the envelope alone as the
    body, its ordering key as routing key, the connection's broker user as user_id. Tick lines
    (deadline.tick) are published like the others, but the engine only takes them from its own
    broker user, the one of BROKER_URL: sent as another user they are dead-lettered as
    unauthorized_producer. Malformed lines are refused with their line number and not sent.
    Exits 1 when any line was refused or the broker did not confirm.
    """
    import json
    import sys

    from messages.publisher import EventPublisher
    from workers.operator.errors import OperatorError, UsageProblem
    from workers.progress import count_lines, progress_bar, shows_progress

    settings = load_settings()
    url = broker_url or settings.broker_url
    if not url:
        raise UsageProblem(
            "BROKER_URL is not set", "publish needs RabbitMQ: set BROKER_URL or pass --broker"
        )
    engine_user = settings.engine_user if settings.broker_url else None
    # Bytes, not text: a line that is not UTF-8 is one refused line, not a crash.
    stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    total = None if file == "-" else count_lines(Path(file))
    shown = shows_progress(as_json=as_json)
    with (
        stream,
        EventPublisher(url) as publisher,
        progress_bar("publishing", total, shown=shown) as advance,
    ):
        outcome = _publish_lines(
            stream, publisher, engine_user, echo_refused=not as_json, advance=advance
        )
    if as_json:
        typer.echo(json.dumps(outcome.as_json(), indent=2, sort_keys=True))
    else:
        sent, refused = outcome.sent, len(outcome.refused)
        summary = f"sent {sent} event{'' if sent == 1 else 's'} to refunds.events"
        if refused:
            summary += f"; {refused} malformed line{'' if refused == 1 else 's'} not sent"
        typer.echo(summary)
        if outcome.foreign_ticks:
            typer.echo(
                f"warning: {len(outcome.foreign_ticks)} tick lines sent as {outcome.user!r}, "
                f"not as the engine's user {engine_user!r}: the engine dead-letters them as "
                "unauthorized_producer",
                err=True,
            )
    if outcome.failure is not None:
        raise OperatorError(
            f"the broker did not take the message: {outcome.failure}",
            "check that RabbitMQ is running and that --broker or BROKER_URL point at it; the "
            "lines before it were sent, so publish the rest of the file",
        )
    if outcome.refused:
        raise typer.Exit(1)


@dataclass
class _Published:
    user: str
    sent: int = 0
    refused: list[dict[str, object]] = field(default_factory=list)
    foreign_ticks: list[int] = field(default_factory=list)
    """Line numbers of ticks sent as a user other than the engine's."""
    failure: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "refused": self.refused,
            "user": self.user,
            "ticks_not_from_engine_user": self.foreign_ticks,
            "error": self.failure,
        }


def _publish_lines(
    lines: Iterable[bytes],
    publisher: EventPublisher,
    engine_user: str | None,
    *,
    echo_refused: bool,
    advance: Callable[[int], None] = lambda _done: None,
) -> _Published:
    """Send each well-formed line in order; stop at the first the broker does not confirm."""
    from messages import MalformedMessage, PublishError, parse_event
    from messages.ordering import TICK_KEY

    outcome = _Published(publisher.user)
    for number, line in enumerate(lines, start=1):
        advance(number)
        if not line.strip():
            continue
        try:
            event = parse_event(line)
        except MalformedMessage as exc:
            outcome.refused.append(
                {"line": number, "problems": [list(problem) for problem in exc.problems]}
            )
            if echo_refused:
                typer.echo(f"line {number}: {exc}", err=True)
            continue
        try:
            publisher.publish(event)
        except PublishError as exc:
            outcome.failure = (
                f"line {number} not confirmed, stopped after {outcome.sent} sent ({exc})"
            )
            break
        outcome.sent += 1
        if event.type == TICK_KEY and engine_user not in (None, outcome.user):
            outcome.foreign_ticks.append(number)
    return outcome


@app.command("contract")
def show_contract(
    contract_id: str = typer.Argument(..., help="The contract's id."),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """A contract's whole story: events, targets, requests, disputes, deadlines, entries.

    Targets are its milestones and invoices; entries are the ledger transfers its events and
    deadlines caused.
    """
    from workers.operator import commands

    commands.show_contract(contract_id, database_url, as_json=as_json)


@app.command("balance")
def show_balance(
    account: str = typer.Argument(..., help="Account name: user:u1, escrow:m1, platform:fees..."),
    currency: str | None = typer.Option(
        None, "--currency", help="One currency (default: every one the account holds)."
    ),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """An account's balance: available, posted, held and incoming."""
    from workers.operator import commands

    commands.show_balance(account, currency, database_url, as_json=as_json)


@app.command("statement")
def show_statement(
    *,
    account: str = typer.Argument(..., help="Account name: user:u1, escrow:m1, platform:fees..."),
    since: str | None = typer.Option(
        None, "--since", help="First instant shown (ISO 8601; a date is its midnight UTC)."
    ),
    until: str | None = typer.Option(None, "--until", help="Entries before this instant only."),
    currency: str | None = typer.Option(
        None, "--currency", help="One currency (default: every one the account holds)."
    ),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """An account's entries with their cause (event id and type) and the running balance."""
    from workers.operator import commands

    commands.show_statement(account, currency, since, until, database_url, as_json=as_json)


@app.command("disputes")
def show_disputes(
    only_open: bool = typer.Option(False, "--open", help="Open disputes only."),
    only_overdue: bool = typer.Option(
        False, "--overdue", help="Open disputes past their policy's dispute_sla_days only."
    ),
    now: str | None = typer.Option(
        None, "--now", help="Measure ages at this instant (ISO 8601; default: the clock)."
    ),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """The dispute team's queue, oldest first, with age and amount at stake."""
    from workers.operator import commands

    commands.show_disputes(
        database_url, only_open=only_open, only_overdue=only_overdue, now=now, as_json=as_json
    )


@app.command("decide")
def decide(
    ctx: typer.Context,
    *,
    dispute_id: str = typer.Argument(..., help="The dispute to decide."),
    outcome: DisputeOutcome = typer.Option(..., "--outcome", help="The decision."),
    amount_minor: int | None = typer.Option(
        None, "--amount", help="Refund in minor units (partial_refund only)."
    ),
    event_id: str | None = typer.Option(
        None, "--event-id", help="Idempotency key (default: decide:<dispute_id>:<uuid4>)."
    ),
    contract_id: str | None = typer.Option(
        None,
        "--contract",
        help="The dispute's contract (default: read from the database; needed with --no-check).",
    ),
    operator: str | None = typer.Option(
        None,
        "--operator",
        help="Who decides (OP-1; default: RECOURSE_OPERATOR). Refused when neither is set.",
    ),
    broker_url: str | None = typer.Option(
        None, "--broker", help="amqp:// URL of RabbitMQ (default: BROKER_URL)."
    ),
    database_url: str | None = typer.Option(
        None, "--db", help="Database checked before publishing (default: DATABASE_URL)."
    ),
    check: bool = typer.Option(
        True, "--check/--no-check", help="Check the dispute is open in the database first."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the published event as JSON."),
) -> None:
    """Publish the dispute team's decision as a dispute.resolved event."""
    from workers.operator import commands

    commands.decide(
        dispute_id,
        outcome,
        amount_minor,
        event_id,
        contract_id=contract_id,
        operator=operator,
        broker_url=broker_url,
        database_url=database_url,
        check=check,
        debug=is_debug(ctx),
        as_json=as_json,
    )


# Runtime commands: the worker, the relay, the scheduler, all three at once, health, the DLQ.
# Each builds its runtime from the environment (workers.runtime), runs until SIGINT or SIGTERM,
# and serves Prometheus metrics on METRICS_PORT (0: none).


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
    from workers.runtime import (
        from_environment,
        run_worker,
        serve_until_done,
        supervise_from_environment,
    )

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
    from workers.operator.errors import UsageProblem

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
    from workers.runtime import from_environment, serve_until_done

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
    from workers.runtime import from_environment, serve_until_done

    _require_broker("scheduler")
    _check_servers()
    runtime, stop = from_environment()
    runtime.metrics.keep_only("scheduler")
    publisher = runtime.tick_publisher()
    serve_until_done(runtime, lambda: publisher.run(stop))


def _check_servers(*, sqlite_schema: bool = True) -> None:
    """Before a long-running process starts: its database (migrated) and broker answer."""
    from workers.preflight import check_servers

    check_servers(load_settings(), sqlite_schema=sqlite_schema)


@app.command()
def run(
    threads: int | None = typer.Option(
        None, "--threads", "-t", min=1, help="Worker threads (default: WORKER_THREADS)."
    ),
) -> None:
    """Worker, relay and scheduler in one process: the embedded default or a small deployment."""
    from workers.runtime import from_environment, run_all, serve_until_done

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
    import json

    from workers.health import check_url

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


dlq_app = typer.Typer(
    name="dlq",
    help="The dead letters: messages the intake refused and events the engine gave up on.",
    no_args_is_help=True,
)
app.add_typer(dlq_app)

DB_OPTION_HELP = "Database URL (default: DATABASE_URL)."
REASON_HELP = (
    "malformed, misrouted, unauthorized_producer, idempotency_conflict, unknown_subject or "
    "handler_error."
)


def _dlq_reason(reason: str | None) -> str | None:
    from workers.dlq import REASONS
    from workers.operator.errors import UsageProblem

    if reason is not None and reason not in REASONS:
        raise UsageProblem(f"no dead-letter reason {reason!r}", f"use one of: {REASON_HELP}")
    return reason


def _dlq_choice(
    command: str, ids: list[int] | None, reason: str | None, every: bool
) -> tuple[list[int], str | None, bool]:
    """Exactly one way of naming letters: ids, --reason or --all."""
    from workers.operator.errors import UsageProblem

    given = sum((bool(ids), reason is not None, every))
    if given != 1:
        raise UsageProblem(
            "name the dead letters one way",
            f"give their ids, or --reason REASON, or --all (`recourse dlq {command} --help`)",
        )
    return list(ids or []), _dlq_reason(reason), every


def _print_json(value: object) -> None:
    import json

    typer.echo(json.dumps(value, indent=2, sort_keys=True))


@dlq_app.command("list")
def dlq_list(
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Only this reason: {REASON_HELP}"
    ),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000, help="Letters per page."),
    before: int | None = typer.Option(
        None, "--before", help="Start below this dead letter id (the next page)."
    ),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List dead letters, newest first, with their reason and first problem."""
    from workers.dlq import list_letters, printable
    from workers.operator.database import reading

    with reading(database_url or load_settings().database_url) as conn:
        page = list_letters(conn, reason=_dlq_reason(reason), limit=limit, before=before)
    if as_json:
        _print_json(page.as_json())
        return
    for letter in page.letters:
        problem = f"{letter.problems[0][0]}: {letter.problems[0][1]}" if letter.problems else "-"
        fields = (
            str(letter.dead_letter_id),
            letter.dead_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            letter.reason,
            letter.event_type or "-",
            letter.event_id or "-",
            problem,
        )
        typer.echo("  ".join(printable(field) for field in fields))
    shown = len(page.letters)
    summary = f"{shown} of {page.total} dead letter{'' if page.total == 1 else 's'}"
    if page.next_before is not None:
        summary += f"; older ones: recourse dlq list --before {page.next_before}"
    typer.echo(summary)


@dlq_app.command("show")
def dlq_show(
    dead_letter_id: int = typer.Argument(..., help="The dead letter's id (see `dlq list`)."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object, body included."),
) -> None:
    """Print one dead letter: its reason, its problems, where it came from and its body.

    The body is printed as stored, with every character a terminal could take for a control
    escaped (\\x1b, \\u202e...); `--json` gives it as a JSON string.
    """
    from workers.dlq import get_letter, printable
    from workers.operator.database import describe, reading
    from workers.operator.errors import NotFound

    url = database_url or load_settings().database_url
    with reading(url) as conn:
        letter = get_letter(conn, dead_letter_id)
    if letter is None:
        raise NotFound(
            "dead letter", str(dead_letter_id), describe(url), "see `recourse dlq list` for ids"
        )
    if as_json:
        _print_json(letter.as_json(with_body=True))
        return
    if letter.body_intact:
        body_note = f"{letter.body_bytes} bytes"
    else:
        body_note = (
            f"{letter.body_bytes} bytes received; stored cut at 256 KiB or with undecodable "
            "bytes replaced (\\ufffd)"
        )
    rows = [
        ("dead letter", str(letter.dead_letter_id)),
        ("reason", letter.reason),
        *[("problem", f"{field}: {problem}") for field, problem in letter.problems],
        ("event", f"{letter.event_type or '-'} {letter.event_id or '-'}"),
        ("routing key", letter.routing_key or "-"),
        ("producer", letter.producer or "-"),
        ("log seq", "-" if letter.log_seq is None else str(letter.log_seq)),
        ("received at", letter.received_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("dead at", letter.dead_at.strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("body", body_note),
    ]
    for name, value in rows:
        typer.echo(f"{name + ':':<13}{printable(value)}")
    typer.echo(printable(letter.body, keep_newlines=True))


@dlq_app.command("retry")
def dlq_retry(
    *,
    dead_letter_ids: list[int] = typer.Argument(None, help="Letters to retry, by id."),
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Every letter of: {REASON_HELP}"
    ),
    every: bool = typer.Option(False, "--all", help="Every dead letter."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Submit dead letters to the intake again, oldest first, then delete them.

    The intake judges each body again, as from the broker user that first sent it; what it
    refuses again comes back as a new dead letter. A retried event goes to the end of its
    key's order: it is applied after every event of its key already received. A running
    worker picks it up within SWEEP_SECONDS. Exits 1 when a letter was not retried.
    """
    from workers.dlq import chosen_ids, retry
    from workers.intake.producers import load_producers
    from workers.intake.service import Intake
    from workers.operator.database import reading

    ids, wanted_reason, every = _dlq_choice("retry", dead_letter_ids, reason, every)
    settings = load_settings()
    url = database_url or settings.database_url
    with reading(url) as conn:
        chosen = ids or chosen_ids(conn, reason=wanted_reason, every=every)
    from workers.database import make_engine

    engine = make_engine(url)
    try:
        intake = Intake(
            engine,
            load_producers(settings.producers_file, settings.engine_user),
            # No worker of this process: the workers' sweepers find the new entries.
            nudge=lambda _partitions: None,
        )
        outcomes = retry(engine, intake, chosen)
    finally:
        engine.dispose()
    retried = sum(outcome.retried for outcome in outcomes)
    kept = len(outcomes) - retried
    if as_json:
        _print_json(
            {
                "retried": retried,
                "kept": kept,
                "letters": [outcome.as_json() for outcome in outcomes],
            }
        )
    else:
        for outcome in outcomes:
            verb = "retried" if outcome.retried else "kept"
            typer.echo(f"{verb} {outcome.dead_letter_id}: {outcome.detail}")
        typer.echo(f"{retried} retried, {kept} kept")
    if kept:
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    *,
    dead_letter_ids: list[int] = typer.Argument(None, help="Letters to delete, by id."),
    reason: str | None = typer.Option(
        None, "--reason", "-r", help=f"Every letter of: {REASON_HELP}"
    ),
    every: bool = typer.Option(False, "--all", help="Every dead letter."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: the letters are deleted for good."),
    database_url: str | None = typer.Option(None, "--db", help=DB_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Delete dead letters for good. Exits 1 when a letter named by id does not exist."""
    from workers.database import make_engine
    from workers.dlq import chosen_ids, purge
    from workers.operator.database import reading
    from workers.operator.errors import UsageProblem

    ids, wanted_reason, every = _dlq_choice("purge", dead_letter_ids, reason, every)
    if not yes:
        raise UsageProblem(
            "purge deletes dead letters for good", "pass --yes to confirm, or see `dlq list`"
        )
    url = database_url or load_settings().database_url
    with reading(url) as conn:
        found = chosen_ids(conn, ids=ids, reason=wanted_reason, every=every)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            purged = purge(conn, found)
    finally:
        engine.dispose()
    missing = sorted(set(ids) - set(found))
    if as_json:
        _print_json({"purged": purged, "missing": missing})
    else:
        typer.echo(f"{purged} dead letter{'' if purged == 1 else 's'} purged")
        for dead_letter_id in missing:
            typer.echo(f"no dead letter {dead_letter_id}", err=True)
    if missing:
        raise typer.Exit(1)


@app.command("console")
def console() -> None:
    """Serve the operators' web console (CONSOLE_HOST:CONSOLE_PORT, default 127.0.0.1:8080).

    Embedded (no BROKER_URL) it applies decisions itself; with a broker it publishes them and
    needs CONSOLE_SECRET_KEY. See docs/console.md.
    """
    from console.cli import run_console

    run_console()


def _users_app() -> typer.Typer:
    from console.cli import users_app

    return users_app


app.add_typer(_users_app())
