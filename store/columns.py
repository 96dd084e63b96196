"""Column types every package's tables share.

SQLite has no timezone-aware timestamp: SQLAlchemy hands back naive datetimes from it. The
engine's rule is that every time is aware UTC, so `UtcDateTime` stores UTC and always returns
aware values, on SQLite and PostgreSQL alike. `RunningSum` keeps a running total of amounts
exact (NUMERIC on PostgreSQL) and reads it back as an `int`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Numeric
from sqlalchemy.types import TypeDecorator, TypeEngine

from store.errors import SumOutOfRange


class UtcDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: every stored time is aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # The text SQLAlchemy's SQLite DATETIME stores ("2026-03-02 10:00:00.000000", always
        # with microseconds, so text order is time order), written by datetime's own C code:
        # every event binds several times, and the generic chain costs about 5 us each.
        return _sqlite_text

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        return _sqlite_time


# An event binds its own time to most of the rows it writes (inbox, transfers, outbox, state),
# and reads back times it just wrote: a small cache answers the repeats. Only times in UTC
# itself are cached: two times with one other tzinfo compare (and hash) by their wall clock,
# ignoring `fold`, so the two 01:30 of a night the clocks go back would share an entry.
_TEXT_CACHE = 4096


def _sqlite_text(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:
        return _utc_text(value)
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: every stored time is aware UTC")
    return _utc_text(value.astimezone(UTC))


@lru_cache(maxsize=_TEXT_CACHE)
def _utc_text(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time(value: str | None) -> datetime | None:
    return None if value is None else _utc_time(value)


@lru_cache(maxsize=_TEXT_CACHE)
def _utc_time(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


class SerializedJson(TypeDecorator[Any]):
    """A JSON column written from JSON text the caller has serialised already, read back as
    JSON's values.

    The inbox stores each event's body as the canonical text its digest is computed from:
    binding it through `JSON` would serialise the same body a second time on every event.
    The text goes to the driver as it is (PostgreSQL casts it to `json`; SQLite stores it).
    Anything else, None included, is refused: it is for NOT NULL columns.
    """

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # Replaces the chain `TypeDecorator` would build, which ends in `JSON`'s serialiser.
        return _json_text


def _json_text(value: Any) -> str:
    if not isinstance(value, str):
        # Bound as it is, a mapping would reach the driver unserialised: refuse it here.
        raise TypeError(f"SerializedJson takes JSON text, not {type(value).__name__}")
    return value


INT64_MAX = 2**63 - 1
"""The largest integer SQLite (and PostgreSQL's BIGINT) stores."""


class RunningSum(TypeDecorator[int]):
    """A running total of amounts (a balance row's debits and credits, a contract's paid and
    refunded totals), read and written as a Python `int` on both backends.

    PostgreSQL: NUMERIC(38,0), exact integer arithmetic well past BIGINT. An amount is at most
    10^15 minor units, so reaching 10^38 takes 10^23 maximum-size postings to one row: at a
    million postings a second, some three billion years. No sequence of valid events reaches
    it. psycopg hands NUMERIC back as `Decimal`; this type turns it into `int` (an integral
    Decimal converts exactly), so no Decimal or float reaches the engine's code; an `int`
    binds as it is. `SUM` of a NUMERIC is NUMERIC, so sums over these columns stay exact too.

    SQLite: INTEGER, 64-bit. SQLite's own arithmetic would silently turn a sum past 2^63 - 1
    into an inexact REAL; the ledger's triggers refuse that (`ledger.balances`), and a value
    bound from Python beyond the range is refused here with `SumOutOfRange` before the driver
    sees it.
    """

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(38, 0, asdecimal=True))
        return dialect.type_descriptor(BigInteger())

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        # Replaces TypeDecorator's chain: an int goes to either driver as it is.
        return _within_int64 if dialect.name == "sqlite" else None

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        return _exact_int if dialect.name == "postgresql" else None


def _within_int64(value: int | None) -> int | None:
    if value is not None and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise SumOutOfRange(f"{value} is beyond the 64-bit integers the embedded store keeps")
    return value


def _exact_int(value: Decimal | int | None) -> int | None:
    # An integral NUMERIC(38,0) converts exactly; anything else means the column changed type.
    if value is None or type(value) is int:
        return value
    converted = int(value)
    if converted != value:
        raise TypeError(f"running sum {value!r} is not an integer")
    return converted
