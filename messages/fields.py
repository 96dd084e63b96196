"""Field types shared by every message: ids, money, text, UTC times, codes.

The limits are those of MESSAGES.md ("Limits"). Each pattern is anchored at both ends and
written so that it means the same in pydantic's engine (Rust `regex`), in ECMA 262 (what JSON
Schema names) and in Python's `re` (what the `jsonschema` package runs): ASCII classes instead
of `\\d` or `\\S` (both are Unicode-wide in Rust and Python, ASCII-only in ECMA 262), and, for
a class that excludes the line feed, a `not: {pattern: "\\n"}` beside it in the schema, because
Python's `$` also matches before a final line feed.

Money is an integer count of minor units (never a float, never a bool); times must carry
seconds and an explicit offset and are normalised to UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr

MAX_MINOR = 10**15
"""The largest amount an inbound message may carry (MESSAGES.md, "Limits"): far below what a
PostgreSQL BIGINT holds, so that the sums the engine keeps of them stay exact."""

MAX_SUM_MINOR = 2**63 - 1
"""The largest amount the engine itself reports (a notification may carry a sum of amounts)."""

_SINGLE_LINE: dict[str, Any] = {"not": {"pattern": r"\n"}}
"""Beside a pattern whose class excludes the line feed: Python's `re` (as the `jsonschema`
package runs it) lets `$` match before a final line feed, which ECMA 262 and the engine do not."""

ID_PATTERN = r"^[!-~]{1,128}$"
Id = Annotated[
    StrictStr,
    Field(min_length=1, max_length=128, pattern=ID_PATTERN, json_schema_extra=_SINGLE_LINE),
]
"""An identifier from upstream: 1 to 128 printable ASCII characters, no spaces (`!` to `~`)."""

CONTROL_CHARACTERS = r"\u0000-\u001f\u007f-\u009f"
"""Unicode's control characters (category Cc): C0, DEL and C1."""

TEXT_PATTERN = rf"^[^{CONTROL_CHARACTERS}]*$"
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN, json_schema_extra=_SINGLE_LINE),
]
"""Free text (`reason`): 1 to 2,000 characters, no control characters."""

EVIDENCE_TEXT_PATTERN = r"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$"
EvidenceText = Annotated[
    StrictStr,
    Field(
        min_length=0,
        max_length=10000,
        pattern=EVIDENCE_TEXT_PATTERN,
        description=(
            "0 to 10,000 characters; line feeds and tabs allowed, every other control "
            "character (carriage return included: lines end with a line feed) refused."
        ),
    ),
]
"""A party's statement: may run over several lines (line feed, tab), no other control character."""

AmountMinor = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)]
PositiveAmountMinor = Annotated[StrictInt, Field(gt=0, le=MAX_MINOR)]
SumMinor = Annotated[StrictInt, Field(ge=0, le=MAX_SUM_MINOR)]
"""An amount the engine reports: a sum of inbound amounts, within a BIGINT."""
ByteCount = Annotated[StrictInt, Field(ge=0, le=MAX_MINOR)]
"""A size in bytes, under the same limit as amounts."""
Currency = Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$", json_schema_extra=_SINGLE_LINE)]
Jurisdiction = Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$", json_schema_extra=_SINGLE_LINE)]
Sha256 = Annotated[
    StrictStr,
    Field(pattern=r"^[0-9a-f]{64}$", json_schema_extra=_SINGLE_LINE),
]
"""A SHA-256 digest: 64 lowercase hexadecimal digits."""
MediaType = Annotated[
    StrictStr,
    Field(
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*$",
        json_schema_extra=_SINGLE_LINE,
    ),
]
"""A media type without parameters (RFC 6838), such as `application/pdf`."""
FileName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=255, pattern=TEXT_PATTERN, json_schema_extra=_SINGLE_LINE),
]
HttpsUrl = Annotated[
    StrictStr,
    Field(
        max_length=2048,
        pattern=r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?$",
        json_schema_extra=_SINGLE_LINE,
    ),
]
"""An https URL of printable ASCII without spaces (the marketplace hosts the file)."""

_DIGIT = "[0-9]"


def _date(year: str, leap_year: str) -> str:
    """The dates that exist: days each month has, February 29 only in a leap year."""
    return (
        f"(?:{year}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]{_DIGIT}|3[01])"
        f"|(?:0[469]|11)-(?:0[1-9]|[12]{_DIGIT}|30)"
        f"|02-(?:0[1-9]|1{_DIGIT}|2[0-8]))"
        f"|{leap_year}-02-29)"
    )


# Leap years: divisible by 4 but not by 100 unless by 400 (2000 and 2400 are leap, 2100 not).
_DATE = _date("2[0-9]{3}", "(?:2[0-9](?:0[48]|[2468][048]|[13579][26])|2000|2400)")
# Python's dates start at year 1: 0000 is not a year.
_ANY_YEAR_DATE = _date(
    "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)",
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)",
)
_TIME = f"(?:[01]{_DIGIT}|2[0-3]):[0-5]{_DIGIT}:[0-5]{_DIGIT}(?:\\.{_DIGIT}{{1,6}})?"
_OFFSET = f"(?:Z|[+-](?:[01]{_DIGIT}|2[0-3]):[0-5]{_DIGIT})"
INSTANT_PATTERN = f"^{_DATE}T{_TIME}{_OFFSET}$"
"""An RFC 3339 instant with seconds and an offset (`Z` or `+hh:mm`), years 2000-2999."""
_INSTANT = re.compile(INSTANT_PATTERN.removeprefix("^").removesuffix("$"))
DATE_PATTERN = f"^{_ANY_YEAR_DATE}$"
_ISO_DATE = re.compile(DATE_PATTERN.removeprefix("^").removesuffix("$"))


def _require_text_time(value: Any) -> Any:
    # pydantic's lax mode would read an integer as a Unix time, and its parser takes times
    # without seconds; the contract asks for the one shape the pattern describes.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise ValueError(
            "must be an ISO 8601 time with seconds and an explicit offset (Z or +hh:mm), "
            "in the years 2000-2999"
        )
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
    # makes any of them refuse what the engine refuses.
    Field(json_schema_extra={"pattern": INSTANT_PATTERN, **_SINGLE_LINE}),
]
"""A timezone-aware instant, normalised to UTC."""


def _require_text_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date that exists, written YYYY-MM-DD")
    return value


def _require_monday(value: date) -> date:
    if value.weekday() != 0:
        raise ValueError("must be a Monday (billing weeks start on Monday 00:00 UTC)")
    return value


IsoDate = Annotated[
    date,
    BeforeValidator(_require_text_date),
    Field(json_schema_extra={"pattern": DATE_PATTERN, **_SINGLE_LINE}),
]
Monday = Annotated[
    date,
    BeforeValidator(_require_text_date),
    AfterValidator(_require_monday),
    Field(
        description="A Monday, YYYY-MM-DD: the first day of a UTC billing week.",
        json_schema_extra={"pattern": DATE_PATTERN, **_SINGLE_LINE},
    ),
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
