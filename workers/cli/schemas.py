"""`recourse migrate` and `schema`: the database's schema and the messages' JSON Schemas."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import inspect

from messages.schema import SCHEMA_DIR, differences, write
from workers.database import current_revisions, make_engine
from workers.database import migrate as run_migrations
from workers.intake.topology import declare_broker_topology
from workers.preflight import check_database
from workers.schema_moves import move_to, print_check
from workers.settings import load_settings

app = typer.Typer()


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
    url = database_url or load_settings().database_url
    setting = "--db" if database_url else "DATABASE_URL"
    if check:
        if not print_check(url, setting, as_json=as_json):
            raise typer.Exit(1)
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
