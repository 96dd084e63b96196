"""The operator commands behind `workers.cli.operators`: read or act, then print a table or
JSON.

`workers.cli.operators` declares the options; these functions do the work, so the CLI module
stays a list of commands. Each raises `OperatorError` for a failure the operator can fix, which
the root command group prints as one line.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from messages.inbound import DisputeOutcome
from policy.config import load_policies
from workers.operator import decisions, render
from workers.operator.database import describe, reading
from workers.operator.disputes import dispute_queue
from workers.operator.errors import UsageProblem
from workers.operator.formats import iso, parse_time
from workers.operator.statements import account_balance, currencies_of, statement
from workers.operator.timeline import contract_timeline
from workers.settings import load_settings


def _database_url(database_url: str | None) -> str:
    return database_url or load_settings().database_url


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True))


def _time_option(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise UsageProblem(
            f"{name}: {exc}", "write it as 2026-03-02 or 2026-03-02T10:00:00Z"
        ) from None


def show_contract(contract_id: str, database_url: str | None, *, as_json: bool) -> None:
    url = _database_url(database_url)
    with reading(url) as conn:
        timeline = contract_timeline(conn, contract_id, where=describe(url))
    if as_json:
        _print_json(timeline.as_json())
    else:
        render.print_timeline(timeline, Console())


def show_balance(
    account: str, currency: str | None, database_url: str | None, *, as_json: bool
) -> None:
    url = _database_url(database_url)
    with reading(url) as conn:
        balances = [
            account_balance(conn, account, each)
            for each in currencies_of(conn, account, currency, where=describe(url))
        ]
    if as_json:
        _print_json(
            {
                "account": account,
                "cost_account": balances[0].cost_account,
                "balances": {
                    item.currency: {
                        "available_minor": item.available_minor,
                        "posted_minor": item.posted_minor,
                        "held_minor": item.held_minor,
                        "incoming_minor": item.incoming_minor,
                        "frozen": item.frozen,
                        "entries": item.entries,
                    }
                    for item in balances
                },
            }
        )
    else:
        render.print_balances(balances, Console())


def show_statement(
    account: str,
    currency: str | None,
    since: str | None,
    until: str | None,
    database_url: str | None,
    *,
    as_json: bool,
) -> None:
    start = _time_option("--since", since)
    end = _time_option("--until", until)
    if start is not None and end is not None and end <= start:
        raise UsageProblem("--until is not after --since", "swap them or widen the window")
    url = _database_url(database_url)
    with reading(url) as conn:
        statements = [
            statement(conn, account, each, since=start, until=end)
            for each in currencies_of(conn, account, currency, where=describe(url))
        ]
    if as_json:
        _print_json({"account": account, "statements": [item.as_json() for item in statements]})
        return
    console = Console()
    for item in statements:
        render.print_statement(item, console)


def show_disputes(
    database_url: str | None,
    *,
    only_open: bool,
    only_overdue: bool,
    now: str | None,
    as_json: bool,
) -> None:
    at = _time_option("--now", now) or datetime.now(UTC)
    settings = load_settings()
    policies = load_policies(settings.policy_file, settings.default_policy)
    url = database_url or settings.database_url
    with reading(url) as conn:
        queue = dispute_queue(conn, policies, at, only_open=only_open, only_overdue=only_overdue)
    if as_json:
        _print_json({"now": iso(at), "disputes": [item.as_json() for item in queue]})
    else:
        render.print_disputes(queue, at, Console())


def decide(
    dispute_id: str,
    outcome: DisputeOutcome,
    amount_minor: int | None,
    event_id: str | None,
    *,
    contract_id: str | None = None,
    operator: str | None = None,
    broker_url: str | None,
    database_url: str | None,
    check: bool,
    debug: bool,
    as_json: bool,
) -> None:
    decided_by = decisions.operator_of(operator, dict(os.environ))
    decision = decisions.Decision(dispute_id, outcome, amount_minor, contract_id, decided_by)
    decisions.check_usage(decision)
    settings = load_settings()
    broker = decisions.require_broker(broker_url or settings.broker_url)
    # Whole seconds, like the times upstream services send: the decision is a human act.
    now = datetime.now(UTC).replace(microsecond=0)
    dispute = None
    if check:
        url = database_url or settings.database_url
        with reading(url) as conn:
            dispute = decisions.check_against_store(conn, decision, where=describe(url))
    decision = decisions.with_contract_of(decision, dispute)
    event = decisions.envelope(decision, event_id=event_id, now=now)
    routing_key = decisions.publish(event, broker, debug=debug)
    body = event.model_dump(mode="json", exclude_none=True)
    if as_json:
        _print_json({"routing_key": routing_key, "event": body})
    else:
        amount = f" of {amount_minor} minor units" if amount_minor is not None else ""
        typer.echo(
            f"published dispute.resolved {event.event_id}: {outcome}{amount} for dispute "
            f"{dispute_id}, decided by {decided_by} (routing key {routing_key})"
        )
