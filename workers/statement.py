"""The readable form of a replay report: balances, notifications, rejections, dead letters."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from workers.replay import ReplayReport

# ISO 4217 currencies whose minor unit is the major unit (no decimals), and the few with three.
_ZERO_DECIMALS = frozenset(
    {
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "ISK",
        "JPY",
        "KMF",
        "KRW",
        "PYG",
        "RWF",
        "UGX",
        "UYI",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
        "PTS",
    }
)
_THREE_DECIMALS = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})


def format_minor(amount_minor: int, currency: str) -> str:
    """An amount in minor units written in its currency's major unit.

    12345 USD -> '123.45 USD'; 12345 JPY -> '12,345 JPY'; points are whole units.
    """
    decimals = 0 if currency in _ZERO_DECIMALS else 3 if currency in _THREE_DECIMALS else 2
    sign = "-" if amount_minor < 0 else ""
    if decimals == 0:
        return f"{sign}{abs(amount_minor):,} {currency}"
    whole, fraction = divmod(abs(amount_minor), 10**decimals)
    return f"{sign}{whole:,}.{fraction:0{decimals}d} {currency}"


EXTERNAL_NOTE = (
    "external:* accounts are the world outside the platform, the other side of every payment "
    "in or out: external:card is minus what clients paid by card, net of what went back to "
    "their cards, so that each currency sums to zero."
)


def notification_details(data: dict[str, Any]) -> list[str]:
    """A notification's data as `name: value` lines: amounts (`*_minor`) in their currency's
    major unit like the balances, fields without a value left out."""
    currency = data.get("currency")
    lines = []
    for key, value in data.items():
        if value is None or (key == "currency" and isinstance(currency, str)):
            continue
        if key.endswith("_minor") and isinstance(value, int) and isinstance(currency, str):
            lines.append(f"{key.removesuffix('_minor')}: {format_minor(value, currency)}")
        elif isinstance(value, list | dict):
            lines.append(f"{key}: {json.dumps(value, sort_keys=True)}")
        else:
            lines.append(f"{key}: {value}")
    return lines


def print_statement(report: ReplayReport, console: Console) -> None:
    balances = Table(title="Balances", title_justify="left")
    balances.add_column("account")
    balances.add_column("balance", justify="right")
    for account in sorted(report.balances):
        for currency, amount in sorted(report.balances[account].items()):
            balances.add_row(account, format_minor(amount, currency))
    console.print(balances)
    if any(account.startswith("external:") for account in report.balances):
        console.print(EXTERNAL_NOTE, style="dim")

    # One block per notification, its details one a line: a table's details column is cut at
    # 80 columns.
    console.print()
    console.print("Notifications", style="italic")
    for item in report.notifications:
        console.print(
            f"{item['occurred_at']}  [bold]{item['type']}[/bold]  to "
            f"{', '.join(item['recipients'])}",
            highlight=False,
        )
        for line in notification_details(item["data"]):
            console.print(f"    {line}", highlight=False, markup=False)
    console.print()

    if report.rejections:
        rejections = Table(title="Rejections", title_justify="left")
        rejections.add_column("event")
        rejections.add_column("reason")
        for item in report.rejections:
            rejections.add_row(item["event_id"], item["reason"])
        console.print(rejections)

    if report.dead_letters:
        dead = Table(title="Dead letters", title_justify="left")
        dead.add_column("line", justify="right")
        dead.add_column("error")
        for item in report.dead_letters:
            dead.add_row(str(item["line"]), item["error"])
        console.print(dead)

    console.print(
        f"{report.events_read} events read, {len(report.rejections)} rejected, "
        f"{report.duplicates} duplicates, {len(report.dead_letters)} dead-lettered"
    )
