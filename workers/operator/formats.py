"""How operator output spells times, amounts and ages, the same in tables and in JSON."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

from workers.statement import format_minor

__all__ = ["format_age", "format_minor", "iso", "jsonable", "parse_time"]


def iso(at: datetime | None) -> str | None:
    """An aware time as ISO 8601 in UTC with `Z`, as the message contract writes times."""
    if at is None:
        return None
    text = at.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def format_age(age: timedelta) -> str:
    """A duration an operator reads at a glance: `3d 4h`, `5h 12m`, `40m`."""
    seconds = int(age.total_seconds())
    sign = "-" if seconds < 0 else ""
    minutes, _ = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m"


def parse_time(text: str) -> datetime:
    """An operator's time: ISO 8601 date or date-time; one given without offset is UTC.

    Raises ValueError with the text at fault.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def jsonable(value: Any) -> Any:
    """`value` with dataclasses as dicts and times as ISO text, ready for `json.dumps`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)
        }
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
