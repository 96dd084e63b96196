"""The `recourse` command: one Typer app; each group of commands lives in its own module."""

from __future__ import annotations

import typer

from workers.settings import load_settings

app = typer.Typer(
    name="recourse",
    help="Refund, escrow and dispute engine for freelance marketplaces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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
