"""`recourse audit-log`: the console's audit log on the command line, as text or JSON Lines.

`--json` prints one JSON object a line, oldest first, so that an export can be appended to:
`recourse audit-log --json --after SEQ >> audit.jsonl` takes up where the last one stopped.
"""

from __future__ import annotations

import json

import typer

from console import audit
from console.tokens_cli import DB_HELP, store

audit_log_app = typer.Typer()


@audit_log_app.command("audit-log")
def audit_log(
    as_json: bool = typer.Option(
        False, "--json", help="JSON Lines: one entry a line, every field, oldest first."
    ),
    after: int = typer.Option(0, "--after", min=0, help="Only the entries after this seq."),
    database_url: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """The console's audit log (sign-ins, proposals, approvals, decisions, retries, purges,
    tokens), oldest first; --json exports it as JSON Lines."""
    with store(database_url) as conn:
        for entry in audit.export(conn, after_seq=after):
            if as_json:
                typer.echo(json.dumps(audit.as_json(entry), sort_keys=True))
            else:
                typer.echo(
                    f"{entry.seq}  {entry.at:%Y-%m-%d %H:%M:%S}  {entry.operator}  "
                    f"{entry.action}  {entry.subject}"
                )
