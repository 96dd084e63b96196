"""UTC calendar arithmetic for the policies' time limits.

"Within N days of T" means up to and including the instant T + N x 24 h (docs/policy.md, Time).
Billing weeks run Monday 00:00:00 to Sunday 23:59:59 UTC. Business days are Monday to Friday,
less the policy's holidays, counted from the day after the request's day.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta

# "Sunday 23:59:59" and "Friday 23:59:59" name a whole second: an event stamped 23:59:59.5 is
# still within it, so a day's last instant is the last microsecond, not 23:59:59.000000.
LAST_INSTANT = time(23, 59, 59, 999_999, tzinfo=UTC)
MONDAY = 0
FIRST_WEEKEND_DAY = 5


def window_end(start: datetime, *, days: int = 0, hours: int = 0) -> datetime:
    """The last instant of a window of `days` and `hours` that opens at `start`."""
    return start + timedelta(days=days, hours=hours)


def within(start: datetime, at: datetime, *, days: int = 0, hours: int = 0) -> bool:
    """True when `at` falls inside the window [start, start + days + hours], ends included."""
    return start <= at <= window_end(start, days=days, hours=hours)


def day_of(at: datetime) -> date:
    """The UTC calendar day that holds the instant `at`."""
    if at.tzinfo is None:
        raise ValueError("a naive time names no instant; every time is aware UTC")
    return at.astimezone(UTC).date()


def end_of_day(day: date) -> datetime:
    """The last instant of the UTC day `day`."""
    return datetime.combine(day, LAST_INSTANT)


def billing_week_end(period_start: date) -> datetime:
    """Sunday 23:59:59 UTC (its last instant) of the billing week that starts on `period_start`."""
    if period_start.weekday() != MONDAY:
        raise ValueError("a billing period starts on a Monday")
    return end_of_day(period_start + timedelta(days=6))


def billing_week_start(at: datetime) -> date:
    """The Monday of the billing week that holds the instant `at`."""
    day = day_of(at)
    return day - timedelta(days=day.weekday())


def hourly_dispute_deadline(period_start: date, days_after_period: int) -> datetime:
    """Last instant to dispute an invoice (CC-8): with the default of 5 days, the Friday
    23:59:59 after its billing week ends."""
    return billing_week_end(period_start) + timedelta(days=days_after_period)


def is_business_day(day: date, holidays: Collection[date] = ()) -> bool:
    return day.weekday() < FIRST_WEEKEND_DAY and day not in holidays


def add_business_days(day: date, count: int, holidays: Collection[date] = ()) -> date:
    """The `count`-th business day after `day` (`day` itself is day 0 and never counts)."""
    if count < 0:
        raise ValueError("count must not be negative")
    closed = frozenset(holidays)
    current = day
    remaining = count
    while remaining:
        current += timedelta(days=1)
        if is_business_day(current, closed):
            remaining -= 1
    return current
