"""`recourse replay`, `verify` and `audit`: the book fed from a file, applied again, proved."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from ledger.audit import audit as audit_books
from policy.config import load_policies
from workers.database import make_engine, make_throwaway_engine
from workers.database import migrate as run_migrations
from workers.preflight import check_database
from workers.progress import progress_bar, shows_progress
from workers.replay import replay_lines
from workers.settings import load_settings
from workers.statement import print_statement
from workers.verify import steps_to_verify
from workers.verify import verify as verify_books

app = typer.Typer()


@app.command()
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSON Lines of events."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: a fresh SQLite file in a temporary folder)."
    ),
) -> None:
    """Feed a JSON Lines file of events through the handlers and print the outcome."""
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
