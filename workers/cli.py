"""The `recourse` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

from pathlib import Path

import typer

from messages.inbound import DisputeOutcome
from workers.operator.group import OneLineErrors, is_debug, set_debug
from workers.settings import load_settings

app = typer.Typer(
    name="recourse",
    help="Refund, escrow and dispute engine for freelance marketplaces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=OneLineErrors,
)


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False, "--debug", help="On a failure, show the traceback instead of one line."
    ),
) -> None:
    set_debug(ctx, debug)


@app.command()
def migrate(
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
) -> None:
    """Create or upgrade the database schema to the newest revision."""
    from workers.database import make_engine
    from workers.database import migrate as run_migrations

    url = database_url or load_settings().database_url
    engine = make_engine(url)
    run_migrations(engine)
    typer.echo(f"schema is up to date on {engine.url.render_as_string(hide_password=True)}")


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
    from rich.progress import Progress

    from policy.config import load_policies
    from workers.database import make_engine, make_throwaway_engine
    from workers.database import migrate as run_migrations
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
        show_progress = not as_json and len(lines) >= PROGRESS_FROM_LINES
        with Progress(disable=not show_progress, transient=True) as progress:
            task = progress.add_task("replaying", total=len(lines))
            report = replay_lines(
                engine,
                lines,
                policies,
                progress=lambda number: progress.update(task, completed=number),
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

    engine = make_engine(database_url or load_settings().database_url)
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
) -> None:
    """Generate the JSON Schema of every message and the AsyncAPI 3.0 document."""
    from messages.schema import SCHEMA_DIR, differences, write

    target = directory or SCHEMA_DIR
    if check:
        problems = differences(target)
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            typer.echo("run `recourse schema` and commit the result", err=True)
            raise typer.Exit(1)
        typer.echo(f"{target} matches the message models")
        return
    changed = write(target)
    typer.echo(f"{len(changed)} files written or removed in {target}")


@app.command()
def publish(
    file: str = typer.Argument(..., help="JSON Lines of envelopes, one a line; - reads stdin."),
    broker_url: str | None = typer.Option(
        None, "--broker", help="amqp:// URL of RabbitMQ (default: BROKER_URL)."
    ),
) -> None:
    """Send inbound events to RabbitMQ with publisher confirms.

    Malformed lines are reported with their line number and not sent; the rest are. Exits 1
    when any line was malformed or the broker did not confirm.
    """
    import sys

    from messages import MalformedMessage, PublishError, parse_event
    from messages.publisher import EventPublisher

    url = broker_url or load_settings().broker_url
    if not url:
        typer.echo("BROKER_URL is not set: publish needs RabbitMQ (or pass --broker)", err=True)
        raise typer.Exit(2)
    # Bytes, not text: a line that is not UTF-8 is one malformed line, not a crash.
    stream = sys.stdin.buffer if file == "-" else Path(file).open("rb")  # noqa: SIM115
    sent = malformed = 0
    try:
        with stream, EventPublisher(url) as publisher:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    event = parse_event(line)
                except MalformedMessage as exc:
                    malformed += 1
                    typer.echo(f"line {number}: {exc}", err=True)
                    continue
                publisher.publish(event)
                sent += 1
    except PublishError as exc:
        typer.echo(f"stopped after {sent} sent: {exc}", err=True)
        raise typer.Exit(1) from None
    summary = f"sent {sent} event{'' if sent == 1 else 's'}"
    if malformed:
        summary += f"; {malformed} malformed line{'' if malformed == 1 else 's'} not sent"
    typer.echo(summary)
    if malformed:
        raise typer.Exit(1)


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
    """Consume refunds.events and refunds.ticks with Dramatiq worker threads.

    Dramatiq's Worker runs inside this process (not the `dramatiq` command); with --processes N
    this process supervises N spawned worker processes and restarts any that dies.
    """
    from workers.runtime import (
        from_environment,
        run_worker,
        serve_until_done,
        supervise_from_environment,
    )

    _require_broker("worker")
    if processes > 1:
        supervise_from_environment(processes, threads)
        return
    runtime, stop = from_environment()
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
    """Publish committed notifications from the outbox to the refunds.notifications exchange."""
    from workers.runtime import from_environment, serve_until_done

    runtime, stop = from_environment()
    outbox_relay = runtime.relay()
    idle = runtime.settings.relay_idle_seconds
    serve_until_done(runtime, lambda: outbox_relay.run(stop, idle_seconds=idle))


@app.command()
def scheduler() -> None:
    """Publish deadline.tick every TICK_INTERVAL_SECONDS; one instance active (advisory lock)."""
    from workers.runtime import from_environment, serve_until_done

    _require_broker("scheduler")
    runtime, stop = from_environment()
    publisher = runtime.tick_publisher()
    serve_until_done(runtime, lambda: publisher.run(stop))


@app.command()
def run(
    threads: int | None = typer.Option(
        None, "--threads", "-t", min=1, help="Worker threads (default: WORKER_THREADS)."
    ),
) -> None:
    """Worker, relay and scheduler in one process: the embedded default or a small deployment."""
    from workers.runtime import from_environment, run_all, serve_until_done

    runtime, stop = from_environment()
    serve_until_done(runtime, lambda: run_all(runtime, stop, threads=threads))


@app.command()
def health(as_json: bool = typer.Option(False, "--json", help="Print the checks as JSON.")) -> None:
    """Check the database and the broker; exit 1 when either is not usable."""
    import json

    from workers.database import make_engine
    from workers.health import check_all

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        checks = check_all(engine, settings.broker_url)
    finally:
        engine.dispose()
    for check in checks:
        if as_json:
            typer.echo(json.dumps({"name": check.name, "ok": check.ok, "detail": check.detail}))
        else:
            typer.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


dlq_app = typer.Typer(
    name="dlq",
    help="Inspect the dead-letter queues refunds.events.XQ and refunds.ticks.XQ, with reasons.",
    no_args_is_help=True,
)
app.add_typer(dlq_app)

QUEUE_OPTION_HELP = "events, ticks or all."


def _dlq_names(queue: str) -> list[str]:
    from messages.transport import EVENTS_QUEUE, TICKS_QUEUE, dead_letter_queue

    choices = {
        "events": [dead_letter_queue(EVENTS_QUEUE)],
        "ticks": [dead_letter_queue(TICKS_QUEUE)],
        "all": [dead_letter_queue(EVENTS_QUEUE), dead_letter_queue(TICKS_QUEUE)],
    }
    if queue not in choices:
        raise typer.BadParameter(f"choose events, ticks or all, not {queue!r}")
    return choices[queue]


def _dlq_broker_url() -> str:
    from workers.operator.errors import UsageProblem

    url = load_settings().broker_url
    if not url:
        raise UsageProblem(
            "BROKER_URL is not set", "dead letters live in RabbitMQ: set BROKER_URL to its amqp URL"
        )
    return url


@dlq_app.command("list")
def dlq_list(
    queue: str = typer.Option("all", "--queue", "-q", help=QUEUE_OPTION_HELP),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per letter."),
) -> None:
    """List dead letters with their reason, oldest first; they stay in the queue."""
    import json

    from workers.dlq import DeadLetterQueues

    with DeadLetterQueues(_dlq_broker_url()) as queues:
        for name in _dlq_names(queue):
            for letter in queues.peek(name):
                if as_json:
                    typer.echo(json.dumps(letter.as_json(), sort_keys=True))
                    continue
                typer.echo(
                    f"{letter.message_id or '-'}  {name}  {letter.reason}  "
                    f"{letter.event_type or '-'}  {letter.event_id or '-'}  {letter.error}"
                )


@dlq_app.command("show")
def dlq_show(
    message_id: str = typer.Argument(..., help="The letter's Dramatiq message id."),
) -> None:
    """Print one dead letter: its reason, its error and the message body."""
    import json

    from workers.dlq import DeadLetterQueues

    with DeadLetterQueues(_dlq_broker_url()) as queues:
        letter = queues.find(message_id)
    if letter is None:
        typer.echo(f"no dead letter {message_id}", err=True)
        raise typer.Exit(1)
    shown = letter.as_json()
    try:
        shown["message"] = json.loads(letter.body)
    except ValueError:
        shown["message"] = letter.body.decode("utf-8", errors="replace")
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


@dlq_app.command("retry")
def dlq_retry(
    message_ids: list[str] = typer.Argument(None, help="Letters to retry (default: --all)."),
    every: bool = typer.Option(False, "--all", help="Retry every letter of the queue(s)."),
    queue: str = typer.Option("all", "--queue", "-q", help=QUEUE_OPTION_HELP),
) -> None:
    """Send letters back to their original queue, without their failure history."""
    from workers.dlq import DeadLetterQueues
    from workers.errors import DeadLetterError

    if not message_ids and not every:
        typer.echo("name the letters to retry, or pass --all", err=True)
        raise typer.Exit(2)
    wanted = None if every else set(message_ids)
    sent = 0
    with DeadLetterQueues(_dlq_broker_url()) as queues:
        for name in _dlq_names(queue):
            try:
                sent += queues.retry(name, wanted)
            except DeadLetterError as exc:
                typer.echo(f"{exc} ({sent} sent back before)", err=True)
                raise typer.Exit(1) from None
    typer.echo(f"{sent} dead letters sent back to their queues")
    if wanted is not None and sent < len(wanted):
        raise typer.Exit(1)


@dlq_app.command("purge")
def dlq_purge(
    queue: str = typer.Option("all", "--queue", "-q", help=QUEUE_OPTION_HELP),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Drop every letter of the queue(s)."""
    from workers.dlq import DeadLetterQueues

    names = _dlq_names(queue)
    if not yes:
        typer.confirm(f"Drop every letter of {', '.join(names)}?", abort=True)
    with DeadLetterQueues(_dlq_broker_url()) as queues:
        purged = sum(queues.purge(name) for name in names)
    typer.echo(f"{purged} dead letters purged")
