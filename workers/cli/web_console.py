"""`recourse console`, `recourse users` and `recourse tokens`: the operators' web console, its
accounts and the back office's API tokens."""

from __future__ import annotations

import typer

from console.audit_cli import audit_log_app
from console.cli import run_console, users_app
from console.tokens_cli import tokens_app

app = typer.Typer()


@app.command("console")
def console() -> None:
    """Serve the operators' web console (CONSOLE_HOST:CONSOLE_PORT, default 127.0.0.1:8080).

    Embedded (no BROKER_URL) it applies decisions itself; with a broker it publishes them and
    needs CONSOLE_SECRET_KEY. See docs/console.md.
    """
    run_console()


app.add_typer(users_app)
app.add_typer(tokens_app)
app.registered_commands += audit_log_app.registered_commands
