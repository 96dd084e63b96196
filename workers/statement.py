"""The readable form of a replay report: balances, notifications, rejections, dead letters."""

from __future__ import annotations

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


def print_statement(report: ReplayReport, console: Console) -> None:
    balances = Table(title="Balances", title_justify="left")
    balances.add_column("account")
    balances.add_column("balance", justify="right")
    for account in sorted(report.balances):
        for currency, amount in sorted(report.balances[account].items()):
            balances.add_row(account, format_minor(amount, currency))
    console.print(balances)

    notifications = Table(title="Notifications", title_justify="left")
    notifications.add_column("at")
    notifications.add_column("type")
    notifications.add_column("to")
    notifications.add_column("details")
    for item in report.notifications:
        details = ", ".join(f"{key}={value}" for key, value in item["data"].items())
        notifications.add_row(
            item["occurred_at"], item["type"], ", ".join(item["recipients"]), details
        )
    console.print(notifications)

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
