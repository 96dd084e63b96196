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
    from workers.database import make_engine
    from workers.database import migrate as run_migrations
    from workers.replay import replay_lines
    from workers.statement import print_statement

    settings = load_settings()
    policies = load_policies(settings.policy_file, settings.default_policy)
    with tempfile.TemporaryDirectory(prefix="recourse-replay-") as scratch:
        engine = make_engine(database_url or f"sqlite:///{Path(scratch) / 'replay.sqlite'}")
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
        broker_url=broker_url,
        database_url=database_url,
        check=check,
        debug=is_debug(ctx),
        as_json=as_json,
    )
