"""Rich tables of the operator views. JSON output does not come through here: each view's
`as_json()` is the machine form, and these tables only arrange the same values for people."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.console import Console
from rich.table import Table

from workers.operator.disputes import QueuedDispute
from workers.operator.entries import TransferLine
from workers.operator.formats import format_age, format_minor, iso
from workers.operator.statements import AccountBalance, Statement
from workers.operator.timeline import ContractTimeline


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        numeric = column.endswith(("amount", "balance", "change", "#", "notes", "moves"))
        table.add_column(column, justify="right" if numeric else "left")
    return table


def _when(at: datetime | None) -> str:
    return iso(at) or "-"


def _money(amount_minor: int | None, currency: str | None) -> str:
    if amount_minor is None or currency is None:
        return "-"
    return format_minor(amount_minor, currency)


def print_timeline(timeline: ContractTimeline, console: Console) -> None:
    contract = timeline.contract
    if contract is None:
        console.print(
            f"Contract {timeline.contract_id}: never opened (every event naming it was refused)"
        )
        currency = None
    else:
        currency = contract.currency
        closed = f", closed {_when(contract.closed_at)}" if contract.closed_at else ""
        console.print(
            f"Contract {contract.contract_id} ({contract.kind}, policy {contract.policy}, "
            f"{contract.currency}): client {contract.client_id}, creator {contract.creator_id}; "
            f"opened {_when(contract.opened_at)}{closed}; paid "
            f"{format_minor(contract.paid_total_minor, contract.currency)}, refunded "
            f"{format_minor(contract.refunded_total_minor, contract.currency)}"
        )

    story = _table("Story", "at", "event / deadline", "type", "result", "notes", "moves")
    for line in timeline.story:
        result = f"{line.result} ({line.reason})" if line.reason else line.result
        label = line.id if line.source == "event" else f"deadline {line.id}"
        story.add_row(
            _when(line.at), label, line.type, result, str(line.notifications), str(line.transfers)
        )
    console.print(story)

    if timeline.targets:
        table = _table(
            "Milestones and invoices",
            "target",
            "kind",
            "status",
            "amount",
            "in escrow",
            "released",
            "refunded",
            "refundable",
            "paid at",
            "flags",
        )
        for target in timeline.targets:
            flags = [
                name for name, on in (("frozen", target.frozen), ("final", target.final_at)) if on
            ]
            if target.work_started_at is not None:
                flags.append("work started")
            table.add_row(
                target.target_id,
                target.kind,
                target.status,
                format_minor(target.amount_minor, target.currency),
                format_minor(target.held_in_escrow_minor, target.currency),
                format_minor(target.released_minor, target.currency),
                format_minor(target.refunded_minor, target.currency),
                format_minor(target.refundable_minor, target.currency),
                _when(target.paid_at),
                ", ".join(flags) or "-",
            )
        console.print(table)

    if timeline.refund_requests:
        table = _table(
            "Refund requests", "request", "target", "amount", "status", "requested", "decided"
        )
        for request in timeline.refund_requests:
            table.add_row(
                request.request_id,
                request.target_id,
                _money(request.amount_minor, currency),
                request.status,
                _when(request.requested_at),
                _when(request.decided_at),
            )
        console.print(table)

    if timeline.disputes:
        table = _table(
            "Disputes",
            "dispute",
            "target",
            "status",
            "opened",
            "outcome",
            "refund amount",
            "released amount",
            "resolved",
        )
        for dispute in timeline.disputes:
            table.add_row(
                dispute.dispute_id,
                dispute.target_id,
                dispute.status,
                _when(dispute.opened_at),
                dispute.outcome or "-",
                _money(dispute.refund_minor, currency),
                _money(dispute.released_minor, currency),
                _when(dispute.resolved_at),
            )
        console.print(table)

    deadlines = _table("Open deadlines", "due", "deadline", "created by")
    for deadline in timeline.open_deadlines:
        deadlines.add_row(_when(deadline.due_at), deadline.deadline_id, deadline.created_by_event)
    console.print(deadlines if timeline.open_deadlines else "No open deadlines.")

    _print_transfers("Ledger entries", timeline.transfers, console)


def _print_transfers(title: str, lines: Iterable[TransferLine], console: Console) -> None:
    table = _table(title, "at", "transfer", "code", "debit", "credit", "amount", "cause")
    for line in lines:
        code = line.code if line.kind == "posted" else f"{line.code} ({line.kind})"
        table.add_row(
            _when(line.at),
            line.transfer_id,
            code,
            line.debit,
            line.credit,
            format_minor(line.amount_minor, line.currency),
            line.cause,
        )
    console.print(table)


def print_balances(balances: list[AccountBalance], console: Console) -> None:
    table = _table(
        f"Balance of {balances[0].account}",
        "currency",
        "available balance",
        "posted balance",
        "held amount",
        "incoming amount",
        "frozen",
        "entries #",
    )
    for balance in balances:
        table.add_row(
            balance.currency,
            format_minor(balance.available_minor, balance.currency),
            format_minor(balance.posted_minor, balance.currency),
            format_minor(balance.held_minor, balance.currency),
            format_minor(balance.incoming_minor, balance.currency),
            "yes" if balance.frozen else "no",
            str(balance.entries),
        )
    console.print(table)
    if balances[0].cost_account:
        console.print(_COST_NOTE)


_COST_NOTE = (
    "A cost account: shown as debits - credits, so a positive amount is what the platform bears."
)


def print_statement(statement: Statement, console: Console) -> None:
    window = ""
    if statement.since or statement.until:
        window = f" from {_when(statement.since)} until {_when(statement.until)}"
    table = _table(
        f"Statement of {statement.account} in {statement.currency}{window}",
        "at",
        "code",
        "counterparty",
        "change",
        "balance",
        "cause",
        "event type",
    )
    currency = statement.currency
    table.add_row(
        "", "opening balance", "", "", format_minor(statement.opening_minor, currency), "", ""
    )
    for line in statement.lines:
        code = line.code if line.kind == "posted" else f"{line.code} ({line.kind})"
        table.add_row(
            _when(line.at),
            code,
            line.counterparty,
            format_minor(line.change_minor, currency),
            format_minor(line.balance_minor, currency),
            line.cause,
            line.event_type or "-",
        )
    table.add_row(
        "", "closing balance", "", "", format_minor(statement.closing_minor, currency), "", ""
    )
    console.print(table)
    if statement.cost_account:
        console.print(_COST_NOTE)


def print_disputes(queue: list[QueuedDispute], now: datetime, console: Console) -> None:
    table = _table(
        f"Disputes as of {_when(now)}, oldest first",
        "dispute",
        "contract",
        "target",
        "status",
        "opened",
        "age",
        "SLA due",
        "at stake amount",
        "overdue",
    )
    for item in queue:
        status = item.status if item.outcome is None else f"{item.status} ({item.outcome})"
        table.add_row(
            item.dispute_id,
            item.contract_id,
            item.target_id,
            status,
            _when(item.opened_at),
            format_age(item.age),
            _when(item.due_at),
            _money(item.at_stake_minor, item.currency),
            "OVERDUE" if item.overdue else "-",
        )
    console.print(table if queue else "No disputes match.")
