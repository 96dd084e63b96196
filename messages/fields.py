"""Field types shared by every message: ids, money, UTC times, codes.

Money is an integer count of minor units (never a float, never a bool, never past what a
PostgreSQL BIGINT holds); times must carry an explicit offset and are normalised to UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

MAX_MINOR = 2**63 - 1

Id = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^\S(.*\S)?$")]
"""An identifier from upstream: 1 to 128 characters, no surrounding white space."""

Text = Annotated[StrictStr, Field(min_length=1, max_length=2000)]
AmountMinor = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)]
PositiveAmountMinor = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR)]
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
Jurisdiction = Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$")]

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
_OFFSET_PATTERN = r"([Zz]|[+-]\d{2}:?\d{2})$"


def _require_text_time(value: Any) -> Any:
    # pydantic's lax mode would read an integer as a Unix time; the contract asks for ISO 8601.
    if isinstance(value, datetime):
        return value
    # A string of digits would still be read as a Unix time, so the shape is checked here too.
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 string with an explicit offset, such as Z")
    return value


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must carry an explicit UTC offset (naive times are refused)")
    return value.astimezone(UTC)


UtcDateTime = Annotated[
    datetime,
    BeforeValidator(_require_text_time),
    AfterValidator(_require_aware),
    # `format: date-time` alone is not asserted by most JSON Schema validators; the pattern
    # makes any of them refuse a naive time, as the engine does.
    Field(json_schema_extra={"pattern": _OFFSET_PATTERN}),
]
"""A timezone-aware instant, normalised to UTC."""


def _require_text_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return value


def _require_monday(value: date) -> date:
    if value.weekday() != 0:
        raise ValueError("must be a Monday (billing weeks start on Monday 00:00 UTC)")
    return value


IsoDate = Annotated[date, BeforeValidator(_require_text_date)]
Monday = Annotated[
    date,
    BeforeValidator(_require_text_date),
    AfterValidator(_require_monday),
    Field(description="A Monday, YYYY-MM-DD: the first day of a UTC billing week."),
]


def _require_exact_int(value: Any) -> Any:
    # `Literal[1]` alone compares with ==, so `true` and `1.0` would pass for 1.
    if type(value) is not int:
        raise ValueError("must be the integer 1")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_require_exact_int)]
"""The envelope version this code reads; a JSON integer, not a bool or a float."""

MESSAGE_CONFIG = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)
"""Every message model refuses unknown fields and cannot be changed once read."""
