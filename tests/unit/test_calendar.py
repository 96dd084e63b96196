"""The UTC calendar behind every time rule: windows, billing weeks, the CC-8 Friday deadline
and business days (CC-5), at their edges."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from scheduler.calendar import (
    add_business_days,
    billing_week_end,
    billing_week_start,
    day_of,
    hourly_dispute_deadline,
    is_business_day,
    window_end,
    within,
)

MONDAY = date(2026, 3, 2)
FRIDAY = date(2026, 3, 6)
SUNDAY = date(2026, 3, 8)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_window_of_n_days_includes_its_last_instant_and_not_one_microsecond_more() -> None:
    start = at("2026-03-02T10:00:00")
    assert window_end(start, days=180) == at("2026-08-29T10:00:00")
    assert within(start, at("2026-08-29T10:00:00"), days=180)
    assert not within(start, at("2026-08-29T10:00:00.000001"), days=180)


def test_a_window_opens_at_its_start_and_not_before() -> None:
    start = at("2026-03-02T10:00:00")
    assert within(start, start, hours=24)
    assert not within(start, start - timedelta(microseconds=1), hours=24)
    assert within(start, at("2026-03-03T10:00:00"), hours=24)
    assert not within(start, at("2026-03-03T10:00:01"), hours=24)


def test_cc1_billing_week_ends_sunday_23_59_59_utc() -> None:
    """CC-1: a weekly period runs Monday 00:00:00 to Sunday 23:59:59 UTC."""
    end = billing_week_end(MONDAY)
    assert end.date() == SUNDAY
    assert (end.hour, end.minute, end.second) == (23, 59, 59)
    assert end.tzinfo is UTC
    assert end < at("2026-03-09T00:00:00")
    assert end >= at("2026-03-08T23:59:59.999999")


def test_cc1_a_billing_week_starts_on_a_monday_only() -> None:
    with pytest.raises(ValueError, match="Monday"):
        billing_week_end(date(2026, 3, 3))


@pytest.mark.parametrize(
    ("instant", "monday"),
    [
        ("2026-03-02T00:00:00", MONDAY),
        ("2026-03-08T23:59:59.999999", MONDAY),
        ("2026-03-09T00:00:00", date(2026, 3, 9)),
        ("2026-03-04T12:00:00", MONDAY),
    ],
)
def test_cc1_the_billing_week_of_an_instant(instant: str, monday: date) -> None:
    assert billing_week_start(at(instant)) == monday


def test_the_billing_week_of_an_instant_is_taken_in_utc() -> None:
    # Monday 01:00 in UTC+02:00 is still Sunday in UTC: the week before.
    plus_two = timezone(timedelta(hours=2))
    assert billing_week_start(datetime(2026, 3, 9, 1, 0, tzinfo=plus_two)) == MONDAY


def test_cc8_dispute_deadline_is_the_friday_23_59_59_after_the_period() -> None:
    """CC-8: the week of Monday 2 March ends Sunday 8 March; disputes close Friday 13 March."""
    deadline = hourly_dispute_deadline(MONDAY, 5)
    assert deadline.date() == date(2026, 3, 13)
    assert deadline.weekday() == 4
    assert at("2026-03-13T23:59:59") <= deadline
    assert at("2026-03-13T23:59:59.999999") <= deadline
    assert at("2026-03-14T00:00:00") > deadline


def test_cc8_dispute_deadline_across_a_month_and_a_year_end() -> None:
    assert hourly_dispute_deadline(date(2026, 12, 28), 5).date() == date(2027, 1, 8)


def test_day_of_a_time_is_its_utc_date() -> None:
    minus_five = timezone(timedelta(hours=-5))
    assert day_of(datetime(2026, 3, 6, 21, 0, tzinfo=minus_five)) == date(2026, 3, 7)
    with pytest.raises(ValueError, match="naive"):
        day_of(datetime(2026, 3, 6, 21, 0))


def test_weekends_and_holidays_are_not_business_days() -> None:
    assert is_business_day(FRIDAY)
    assert not is_business_day(date(2026, 3, 7))
    assert not is_business_day(SUNDAY)
    assert not is_business_day(FRIDAY, holidays={FRIDAY})


@pytest.mark.parametrize(
    ("request_day", "count", "expected"),
    [
        # Friday: the weekend does not count, Monday is day 1.
        (FRIDAY, 1, date(2026, 3, 9)),
        (FRIDAY, 3, date(2026, 3, 11)),
        (FRIDAY, 5, date(2026, 3, 13)),
        # Saturday and Sunday requests count from the same Monday.
        (date(2026, 3, 7), 3, date(2026, 3, 11)),
        (SUNDAY, 5, date(2026, 3, 13)),
        # Monday: the request's own day never counts.
        (MONDAY, 3, date(2026, 3, 5)),
        (MONDAY, 5, date(2026, 3, 9)),
        # Wednesday: five business days cross one weekend.
        (date(2026, 3, 4), 5, date(2026, 3, 11)),
        (FRIDAY, 0, FRIDAY),
    ],
)
def test_cc5_business_days_after_a_request(request_day: date, count: int, expected: date) -> None:
    """CC-5: business days are Monday to Friday, counted from the day after the request's."""
    assert add_business_days(request_day, count) == expected


def test_cc5_holidays_push_business_days_out() -> None:
    """CC-5: a holiday on Monday moves days 1 to 3 of a Friday request one day later."""
    holidays = [date(2026, 3, 9)]
    assert add_business_days(FRIDAY, 3, holidays) == date(2026, 3, 12)
    assert add_business_days(FRIDAY, 5, holidays) == date(2026, 3, 16)


def test_cc5_a_holiday_on_a_weekend_changes_nothing() -> None:
    assert add_business_days(FRIDAY, 3, [date(2026, 3, 7)]) == date(2026, 3, 11)


def test_cc5_christmas_week_with_two_holidays() -> None:
    # Thursday 24 December 2026: Friday 25 is a holiday, then the weekend, then Monday 28 is.
    holidays = [date(2026, 12, 25), date(2026, 12, 28)]
    assert add_business_days(date(2026, 12, 24), 3, holidays) == date(2026, 12, 31)
    assert add_business_days(date(2026, 12, 24), 5, holidays) == date(2027, 1, 4)


def test_a_negative_count_of_business_days_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add_business_days(FRIDAY, -1)
