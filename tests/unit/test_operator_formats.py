"""How operator output spells times, ages and amounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from workers.operator.formats import format_age, format_minor, iso, jsonable, parse_time


def test_iso_writes_utc_with_z_whatever_the_offset() -> None:
    paris = timezone(timedelta(hours=1))
    assert iso(datetime(2026, 3, 2, 11, 0, tzinfo=paris)) == "2026-03-02T10:00:00Z"
    assert iso(None) is None


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(days=3, hours=4, minutes=59), "3d 4h"),
        (timedelta(hours=5, minutes=12, seconds=30), "5h 12m"),
        (timedelta(minutes=40), "40m"),
        (timedelta(seconds=59), "0m"),
        (timedelta(hours=-2), "-2h 0m"),
    ],
)
def test_format_age_keeps_the_two_largest_units(age: timedelta, text: str) -> None:
    assert format_age(age) == text


def test_parse_time_reads_dates_and_times_and_takes_naive_ones_as_utc() -> None:
    assert parse_time("2026-03-02") == datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_time("2026-03-02T10:00") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert parse_time("2026-03-02T11:00:00+01:00") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert parse_time("2026-03-02T10:00:00Z").tzinfo == UTC


def test_parse_time_names_the_text_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="'yesterday' is not an ISO 8601"):
        parse_time("yesterday")


def test_format_minor_is_the_replay_report_spelling() -> None:
    assert format_minor(52000, "USD") == "520.00 USD"
    assert format_minor(-46000, "USD") == "-460.00 USD"
    assert format_minor(1500, "PTS") == "1,500 PTS"


@dataclass(frozen=True)
class _Row:
    at: datetime
    day: date
    amount_minor: int
    tags: tuple[str, ...]


def test_jsonable_turns_dataclasses_and_times_into_json_values() -> None:
    row = _Row(datetime(2026, 3, 2, 10, tzinfo=UTC), date(2026, 3, 2), 500, ("a",))
    assert jsonable({"rows": [row]}) == {
        "rows": [
            {"at": "2026-03-02T10:00:00Z", "day": "2026-03-02", "amount_minor": 500, "tags": ["a"]}
        ]
    }
