"""The dispute team's commands: `recourse contract`, `balance`, `statement`, `disputes`,
`decide`. They declare the options; `workers.operator.commands` does the work."""

from __future__ import annotations

import typer

from messages.inbound import DisputeOutcome
from workers.operator import commands
from workers.operator.group import is_debug

app = typer.Typer()


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
    operator: str | None = typer.Option(
        None,
        "--operator",
        help="Who decides (OP-1; default: RECOURSE_OPERATOR). Refused when neither is set.",
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
    commands.decide(
        dispute_id,
        outcome,
        amount_minor,
        event_id,
        contract_id=contract_id,
        operator=operator,
        broker_url=broker_url,
        database_url=database_url,
        check=check,
        debug=is_debug(ctx),
        as_json=as_json,
    )
