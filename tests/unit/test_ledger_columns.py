"""`UtcDateTime` on SQLite writes and reads with datetime's own code the same text SQLAlchemy's
generic DATETIME chain would, so stored times, their text order and old rows stay as they are."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import postgresql, sqlite

from store.columns import UtcDateTime

SQLITE = sqlite.dialect()


def _generic_text(value: datetime) -> str:
    process = DateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert process is not None
    text: str = process(value.astimezone(UTC).replace(tzinfo=None))
    return text


def _times() -> list[datetime]:
    draw = random.Random(20261123)
    times = [datetime(2026, 3, 6, 23, 59, 59, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC)]
    for _ in range(2000):
        at = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            seconds=draw.randrange(10**9), microseconds=draw.choice([0, draw.randrange(10**6)])
        )
        times.append(at.astimezone(timezone(timedelta(hours=draw.randrange(-12, 13)))))
    return times


def test_sqlite_text_is_what_the_generic_chain_writes_and_reads_back_as_aware_utc() -> None:
    write = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    read = UtcDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert write is not None and read is not None
    for at in _times():
        text = write(at)
        assert text == _generic_text(at)
        assert read(text) == at
        assert read(text).tzinfo is UTC


def test_text_order_is_time_order_even_on_whole_seconds() -> None:
    write = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert write is not None
    times = sorted(_times())
    assert sorted(write(at) for at in times) == [write(at) for at in times]
    assert write(datetime(2026, 3, 6, 23, 59, 59, tzinfo=UTC)) == "2026-03-06 23:59:59.000000"


def test_a_naive_time_is_refused_and_none_passes() -> None:
    write = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    read = UtcDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert write is not None and read is not None
    with pytest.raises(ValueError, match="naive"):
        write(datetime(2026, 3, 6, 12, 0))
    assert write(None) is None
    assert read(None) is None


def test_the_cache_of_texts_never_lets_a_naive_time_through_nor_mixes_up_instants() -> None:
    write = UtcDateTime().dialect_impl(SQLITE).bind_processor(SQLITE)
    assert write is not None
    aware = datetime(2026, 3, 6, 12, 0, tzinfo=UTC)
    assert write(aware) == write(aware) == "2026-03-06 12:00:00.000000"
    # The naive twin of a cached instant is not equal to it, so it is refused, every time.
    for _ in range(2):
        with pytest.raises(ValueError, match="naive"):
            write(datetime(2026, 3, 6, 12, 0))
    # One instant in another offset is the same text; another instant in that offset is not.
    new_york = timezone(timedelta(hours=-5))
    assert write(datetime(2026, 3, 6, 7, 0, tzinfo=new_york)) == "2026-03-06 12:00:00.000000"
    assert write(datetime(2026, 3, 6, 12, 0, tzinfo=new_york)) == "2026-03-06 17:00:00.000000"


def test_a_row_stored_without_microseconds_still_reads() -> None:
    read = UtcDateTime().dialect_impl(SQLITE).result_processor(SQLITE, None)
    assert read is not None
    assert read("2026-03-02 10:00:00") == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_postgresql_keeps_the_aware_value() -> None:
    dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
    write = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    at = datetime(2026, 3, 6, 18, 0, tzinfo=timezone(timedelta(hours=-5)))
    stored = write(at) if write is not None else at
    assert stored == at and stored.tzinfo is UTC
