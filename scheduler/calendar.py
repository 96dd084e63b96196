"""UTC calendar arithmetic for the policies' time limits.

"Within N days of T" means up to and including the instant T + N x 24 h (POLICY.md, Time).
Billing weeks run Monday 00:00:00 to Sunday 23:59:59 UTC. Business days are Monday to Friday,
counted from the day after the request's day.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

LAST_SECOND = time(23, 59, 59, tzinfo=UTC)


def window_end(start: datetime, *, days: int = 0, hours: int = 0) -> datetime:
    """The last instant of a window of `days` and `hours` that opens at `start`."""
    return start + timedelta(days=days, hours=hours)


def within(start: datetime, at: datetime, *, days: int = 0, hours: int = 0) -> bool:
    """True when `at` falls inside the window [start, start + days + hours], ends included."""
    return start <= at <= window_end(start, days=days, hours=hours)


def billing_week_end(period_start: date) -> datetime:
    """Sunday 23:59:59 UTC of the billing week that starts on Monday `period_start`."""
    if period_start.weekday() != 0:
        raise ValueError("a billing period starts on a Monday")
    return datetime.combine(period_start + timedelta(days=6), LAST_SECOND)


def billing_week_start(at: datetime) -> date:
    """The Monday of the billing week that holds the instant `at`."""
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def hourly_dispute_deadline(period_start: date, days_after_period: int) -> datetime:
    """Last instant to dispute an invoice (CC-8): the Friday 23:59:59 after the period ends
    with the default of 5 days."""
    return billing_week_end(period_start) + timedelta(days=days_after_period)


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    return day.weekday() < 5 and day not in holidays


def add_business_days(day: date, count: int, holidays: Collection[date] = ()) -> date:
    """The `count`-th business day after `day` (`day` itself is day 0 and never counts)."""
    if count < 0:
        raise ValueError("count must not be negative")
    current = day
    remaining = count
    while remaining:
        current += timedelta(days=1)
        if is_business_day(current, holidays):
            remaining -= 1
    return current
