"""`recourse users ...` and `recourse console`: what the CLI imports from the console."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import typer

from console.accounts import add_operator
from console.roles import Role, parse_role

users_app = typer.Typer(name="users", help="The console's local operator accounts.")


@users_app.command("add")
def users_add(
    *,
    name: str = typer.Argument(..., help="The operator's name (what decided_by carries)."),
    role: str = typer.Option(..., "--role", help=", ".join(item.value for item in Role)),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    no_password: bool = typer.Option(
        False, "--no-password", help="An account that signs in through OpenID Connect only."
    ),
    database_url: str | None = typer.Option(
        None, "--db", help="Database URL (default: DATABASE_URL)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the account as one JSON object."),
) -> None:
    """Add an operator; the password is asked twice unless --password-stdin."""
    from workers.database import make_engine, migrate
    from workers.operator.errors import UsageProblem
    from workers.settings import load_settings

    try:
        chosen = parse_role(role)
    except ValueError as exc:
        raise UsageProblem(str(exc), "pass --role with one of those") from None
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not no_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    engine = make_engine(database_url or load_settings().database_url)
    migrate(engine)
    try:
        with engine.begin() as conn:
            add_operator(conn, name, chosen, password, at=datetime.now(UTC))
    except ValueError as exc:
        raise UsageProblem(str(exc), "choose another name or a longer password") from None
    finally:
        engine.dispose()
    if as_json:
        account = {"name": name, "role": chosen.value, "password": password is not None}
        typer.echo(json.dumps(account, indent=2, sort_keys=True))
    else:
        typer.echo(f"added operator {name} ({chosen.value})")


def run_console() -> None:
    from console.server import serve
    from console.settings import load_console_settings
    from workers.logging import configure_logging
    from workers.settings import load_settings

    settings = load_settings()
    # LOG_FORMAT and LOG_LEVEL as for the engine's processes: JSON lines off a terminal.
    configure_logging(settings.log_format, settings.log_level)
    serve(settings, load_console_settings())
