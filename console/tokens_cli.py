"""`recourse tokens add|list|revoke`: the back office's API tokens, from the command line.

The token is printed once, when it is made; the store keeps only its hash. Each command is
written to the console's audit log, in the same transaction as its change.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import typer
from sqlalchemy import Connection

from console import audit
from console.errors import ConsoleError
from console.roles import Role, parse_role
from console.tokens import ApiToken, create_token, list_tokens, revoke_token

tokens_app = typer.Typer(name="tokens", help="API tokens for the back office (/api/v1).")

DB_HELP = "Database URL (default: DATABASE_URL)."


def _who() -> str:
    # The command line has no console identity: the audit log names the system user.
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def store(database_url: str | None) -> Iterator[Connection]:
    from workers.database import make_engine
    from workers.preflight import check_database
    from workers.settings import load_settings

    url = database_url or load_settings().database_url
    # Tokens belong to a deployment whose schema exists (`recourse migrate`): a typo in the
    # URL is an error, not a new empty database.
    check_database(url, setting="--db" if database_url else "DATABASE_URL")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _as_json(token: ApiToken) -> dict[str, object]:
    return {
        "token_id": token.token_id,
        "owner": token.owner,
        "role": token.role.value,
        "created_at": token.created_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }


@tokens_app.command("add")
def tokens_add(
    owner: str = typer.Argument(..., help="Who the token acts as (what decided_by carries)."),
    role: str = typer.Option(..., "--role", help=", ".join(item.value for item in Role)),
    database_url: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(
        False, "--json", help="Print the token and its record as one JSON object."
    ),
) -> None:
    """Make a token and print it once: store it in the back office's secrets now."""
    from workers.operator.errors import UsageProblem

    try:
        chosen = parse_role(role)
    except ValueError as exc:
        raise UsageProblem(str(exc), "pass --role with one of those") from None
    at = datetime.now(UTC)
    try:
        with store(database_url) as conn:
            token, text = create_token(conn, owner, chosen, at=at)
            audit.record(
                conn,
                at=at,
                operator=_who(),
                action="token.created",
                subject=owner,
                details={"token_id": token.token_id, "role": chosen.value},
            )
    except ValueError as exc:
        raise UsageProblem(str(exc), "choose another owner name") from None
    if as_json:
        typer.echo(json.dumps({**_as_json(token), "token": text}, sort_keys=True))
        return
    typer.echo(f"token {token.token_id} for {owner} ({chosen.value}); shown once:", err=True)
    typer.echo(text)


@tokens_app.command("list")
def tokens_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON object a line."),
    database_url: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Every token with its owner, role and state; never a secret."""
    with store(database_url) as conn:
        tokens = list_tokens(conn)
    for token in tokens:
        if as_json:
            typer.echo(json.dumps(_as_json(token)))
        else:
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            created = f"{token.created_at:%Y-%m-%d}"
            typer.echo(f"{token.token_id}  {token.owner}  {token.role.value}  {created}  {state}")


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: str = typer.Argument(..., help="The token's id (as `tokens list` shows it)."),
    database_url: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the revoked token as JSON."),
) -> None:
    """Revoke a token: every request with it is refused from now on."""
    from workers.operator.errors import UsageProblem

    at = datetime.now(UTC)
    try:
        with store(database_url) as conn:
            token = revoke_token(conn, token_id, at=at)
            audit.record(
                conn,
                at=at,
                operator=_who(),
                action="token.revoked",
                subject=token.owner,
                details={"token_id": token.token_id},
            )
    except ConsoleError as exc:
        raise UsageProblem(exc.message, "see `recourse tokens list`") from None
    if as_json:
        typer.echo(json.dumps(_as_json(token), sort_keys=True))
        return
    typer.echo(f"revoked token {token.token_id} of {token.owner}")
