"""Rich tables of the operator views. JSON output does not come through here: each view's
`as_json()` is the machine form, and these tables only arrange the same values for people."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console
from rich.table import Table

from workers.operator.disputes import QueuedDispute
from workers.operator.formats import format_age, format_minor, iso
from workers.operator.statements import AccountBalance, Statement
from workers.operator.timeline import ContractTimeline

COST_NOTE = (
    "A cost account: shown as debits - credits, so a positive amount is what the platform bears."
)


def _table(title: str, *columns: str, right: tuple[str, ...] = ()) -> Table:
    """A table whose `right` columns (amounts, counts) align on the right."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def _when(at: datetime | None) -> str:
    return iso(at) or "-"


def _money(amount_minor: int, currency: str | None) -> str:
    return "-" if currency is None else format_minor(amount_minor, currency)


def _code(code: str, kind: str) -> str:
    """A transfer's code, with its two-phase kind when it is not a plain posted transfer."""
    return code if kind == "posted" else f"{code} ({kind})"


def print_timeline(timeline: ContractTimeline, console: Console) -> None:
    _print_contract(timeline, console)
    _print_story(timeline, console)
    _print_targets(timeline, console)
    _print_requests_and_disputes(timeline, console)
    _print_deadlines(timeline, console)
    _print_transfers(timeline, console)


def _print_contract(timeline: ContractTimeline, console: Console) -> None:
    contract = timeline.contract
    if contract is None:
        console.print(
            f"Contract {timeline.contract_id}: never opened (every event naming it was refused)",
            highlight=False,
            soft_wrap=True,
        )
        return
    closed = f", closed {_when(contract.closed_at)}" if contract.closed_at else ""
    currency = contract.currency
    console.print(
        f"Contract {contract.contract_id} ({contract.kind}, policy {contract.policy}, "
        f"{currency}): client {contract.client_id}, creator {contract.creator_id}; opened "
        f"{_when(contract.opened_at)}{closed}; paid "
        f"{format_minor(contract.paid_total_minor, currency)}, refunded "
        f"{format_minor(contract.refunded_total_minor, currency)}",
        highlight=False,
        # One line, whatever the width: the terminal wraps it, and a pipe or a test gets it whole.
        soft_wrap=True,
    )


def _print_story(timeline: ContractTimeline, console: Console) -> None:
    table = _table(
        "Story",
        "at",
        "event / deadline",
        "type",
        "result",
        "notifications",
        "transfers",
        right=("notifications", "transfers"),
    )
    for line in timeline.story:
        result = f"{line.result} ({line.reason})" if line.reason else line.result
        table.add_row(
            _when(line.at),
            line.id if line.source == "event" else f"deadline {line.id}",
            line.type,
            f"{result}, decided by {line.decided_by}" if line.decided_by else result,
            str(line.notifications),
            str(line.transfers),
        )
    console.print(table)


def _print_targets(timeline: ContractTimeline, console: Console) -> None:
    if not timeline.targets:
        return
    amounts = ("amount", "in escrow", "released", "refunded", "refundable")
    table = _table(
        "Milestones and invoices",
        "target",
        "kind",
        "status",
        *amounts,
        "paid",
        "flags",
        right=amounts,
    )
    for target in timeline.targets:
        flags = [
            flag
            for flag, on in (
                ("work started", target.work_started_at is not None),
                ("frozen", target.frozen),
                ("final", target.final_at is not None),
            )
            if on
        ]
        currency = target.currency
        table.add_row(
            target.target_id,
            target.kind,
            target.status,
            format_minor(target.amount_minor, currency),
            format_minor(target.held_in_escrow_minor, currency),
            format_minor(target.released_minor, currency),
            format_minor(target.refunded_minor, currency),
            format_minor(target.refundable_minor, currency),
            _when(target.paid_at),
            ", ".join(flags) or "-",
        )
    console.print(table)


def _print_requests_and_disputes(timeline: ContractTimeline, console: Console) -> None:
    currency = timeline.contract.currency if timeline.contract else None
    if timeline.refund_requests:
        table = _table(
            "Refund requests",
            "request",
            "target",
            "amount",
            "status",
            "requested",
            "decided",
            right=("amount",),
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
            "refunded",
            "released",
            "resolved",
            right=("refunded", "released"),
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


def _print_deadlines(timeline: ContractTimeline, console: Console) -> None:
    if not timeline.open_deadlines:
        console.print("No open deadlines.")
        return
    table = _table("Open deadlines", "due", "deadline", "created by")
    for deadline in timeline.open_deadlines:
        table.add_row(_when(deadline.due_at), deadline.deadline_id, deadline.created_by_event)
    console.print(table)


def _print_transfers(timeline: ContractTimeline, console: Console) -> None:
    table = _table(
        "Ledger entries",
        "at",
        "transfer",
        "code",
        "debit",
        "credit",
        "amount",
        "cause",
        right=("amount",),
    )
    for line in timeline.transfers:
        table.add_row(
            _when(line.at),
            line.transfer_id,
            _code(line.code, line.kind),
            line.debit,
            line.credit,
            format_minor(line.amount_minor, line.currency),
            line.cause,
        )
    console.print(table if timeline.transfers else "No ledger entries.")


def print_balances(balances: list[AccountBalance], console: Console) -> None:
    amounts = ("available", "posted", "held", "incoming")
    table = _table(
        f"Balance of {balances[0].account}",
        "currency",
        *amounts,
        "frozen",
        "entries",
        right=(*amounts, "entries"),
    )
    for balance in balances:
        currency = balance.currency
        table.add_row(
            currency,
            format_minor(balance.available_minor, currency),
            format_minor(balance.posted_minor, currency),
            format_minor(balance.held_minor, currency),
            format_minor(balance.incoming_minor, currency),
            "yes" if balance.frozen else "no",
            str(balance.entries),
        )
    console.print(table)
    if balances[0].cost_account:
        console.print(COST_NOTE)


def print_statement(statement: Statement, console: Console) -> None:
    window = ""
    if statement.since or statement.until:
        window = f" from {_when(statement.since)} until {_when(statement.until)}"
    currency = statement.currency
    table = _table(
        f"Statement of {statement.account} in {currency}{window}",
        "at",
        "code",
        "counterparty",
        "change",
        "balance",
        "cause",
        "event type",
        right=("change", "balance"),
    )
    opening = format_minor(statement.opening_minor, currency)
    table.add_row("", "opening balance", "", "", opening, "", "")
    for line in statement.lines:
        table.add_row(
            _when(line.at),
            _code(line.code, line.kind),
            line.counterparty,
            format_minor(line.change_minor, currency),
            format_minor(line.balance_minor, currency),
            line.cause,
            line.event_type or "-",
        )
    closing = format_minor(statement.closing_minor, currency)
    table.add_row("", "closing balance", "", "", closing, "", "")
    console.print(table)
    if statement.cost_account:
        console.print(COST_NOTE)


def print_disputes(queue: list[QueuedDispute], now: datetime, console: Console) -> None:
    if not queue:
        console.print(f"No disputes match as of {_when(now)}.")
        return
    table = _table(
        f"Disputes as of {_when(now)}, oldest first",
        "dispute",
        "contract",
        "target",
        "status",
        "opened",
        "age",
        "SLA due",
        "at stake",
        "overdue",
        right=("age", "at stake"),
    )
    for item in queue:
        table.add_row(
            item.dispute_id,
            item.contract_id,
            item.target_id,
            item.status if item.outcome is None else f"{item.status} ({item.outcome})",
            _when(item.opened_at),
            format_age(item.age),
            _when(item.due_at),
            _money(item.at_stake_minor, item.currency),
            "OVERDUE" if item.overdue else "-",
        )
    console.print(table)
