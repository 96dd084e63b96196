"""The `recourse` command: one Typer app, its commands declared in one module a group.

To add a command: declare it on the `app` of its group's module (or of a new module), then
list it in `COMMANDS` below with the first paragraph of its help; tests/unit/test_cli_listing.py
fails when the two disagree.
"""

from __future__ import annotations

from importlib.metadata import version

import typer

from workers.cli.lazy import LazyCommands, Listed
from workers.operator.group import set_debug

COMMANDS = (
    Listed(
        "migrate",
        "workers.cli.schemas",
        "Create or upgrade the database schema to the newest revision; with BROKER_URL set, "
        "also declare the exchange producers publish to and the engine's intake queue behind "
        "it, so that producers can publish before the first worker starts.",
    ),
    Listed(
        "replay",
        "workers.cli.book",
        "Feed a JSON Lines file of events through the handlers and print the outcome.",
    ),
    Listed(
        "verify",
        "workers.cli.book",
        "Apply the database's events again, in the order they took effect, on a scratch store, "
        "and compare every balance and transfer; exit 1 when they differ.",
    ),
    Listed(
        "audit",
        "workers.cli.book",
        "Prove the books: each currency sums to zero and every balance equals its entries.",
    ),
    Listed(
        "schema",
        "workers.cli.schemas",
        "Generate the JSON Schema of every message and the AsyncAPI 3.0 document.",
    ),
    Listed(
        "publish",
        "workers.cli.publish",
        "Publish inbound events to the refunds.events exchange, with publisher confirms.",
    ),
    Listed(
        "contract",
        "workers.cli.operators",
        "A contract's whole story: events, targets, requests, disputes, deadlines, entries.",
    ),
    Listed(
        "balance",
        "workers.cli.operators",
        "An account's balance: available, posted, held and incoming.",
    ),
    Listed(
        "statement",
        "workers.cli.operators",
        "An account's entries with their cause (event id and type) and the running balance.",
    ),
    Listed(
        "disputes",
        "workers.cli.operators",
        "The dispute team's queue, oldest first, with age and amount at stake.",
    ),
    Listed(
        "decide",
        "workers.cli.operators",
        "Publish the dispute team's decision as a dispute.resolved event.",
    ),
    Listed(
        "worker",
        "workers.cli.runtime",
        "Take in the events of refunds.events and apply them in order with worker threads.",
    ),
    Listed(
        "relay",
        "workers.cli.runtime",
        "Publish committed notifications from the outbox to the refunds.notifications exchange.",
    ),
    Listed(
        "scheduler",
        "workers.cli.runtime",
        "Publish deadline.tick every TICK_INTERVAL_SECONDS; one instance active (advisory lock).",
    ),
    Listed(
        "run",
        "workers.cli.runtime",
        "Worker, relay and scheduler in one process: the embedded default or a small deployment.",
    ),
    Listed(
        "health",
        "workers.cli.runtime",
        "Check the database, the intake's backlog, the broker and that a worker consumes "
        "refunds.intake; exit 1 when any check fails.",
    ),
    Listed(
        "console",
        "workers.cli.web_console",
        "Serve the operators' web console (CONSOLE_HOST:CONSOLE_PORT, default 127.0.0.1:8080).",
    ),
    Listed(
        "dlq",
        "workers.cli.dlq",
        "The dead letters: messages the intake refused and events the engine gave up on.",
    ),
    Listed("users", "workers.cli.web_console", "The console's local operator accounts."),
    Listed("tokens", "workers.cli.web_console", "API tokens for the back office (/api/v1)."),
    Listed(
        "audit-log",
        "workers.cli.web_console",
        "The console's audit log (sign-ins, proposals, approvals, decisions, retries, purges, "
        "tokens), oldest first; --json exports it as JSON Lines.",
    ),
)
"""Every command, in the order `recourse --help` lists them."""


class _RecourseCommands(LazyCommands):
    listing = COMMANDS


app = typer.Typer(
    name="recourse",
    help="Refund, escrow and dispute engine for freelance marketplaces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=_RecourseCommands,
)


def _print_version(wanted: bool) -> None:
    if wanted:
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
