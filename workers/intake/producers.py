"""Who may publish what (MESSAGES.md, "Who may publish what").

The broker validates each message's `user_id` against the connection's user, so the intake can
trust it. A producers file (TOML, `PRODUCERS_FILE`) names, for each broker user, the event types
it may publish, with shell-style patterns:

    [producers.contracts-service]
    types = ["contract.*", "milestone.*", "work.started"]

Without a file every user may publish every type but `deadline.tick`, which only the engine's
own broker user may send, with or without a file. A message without `user_id` is refused.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from messages.ordering import TICK_KEY


class ProducersFileError(ValueError):
    """The producers file cannot be read; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class Producers:
    engine_user: str
    """The engine's own broker user: the one that may send ticks."""
    types_by_user: Mapping[str, tuple[str, ...]] | None = field(default=None)
    """Patterns of the types each user may publish; None: any user, any type but ticks."""

    def may_publish(self, user: str | None, event_type: str) -> bool:
        if not user:
            return False
        if event_type == TICK_KEY:
            return user == self.engine_user
        if self.types_by_user is None:
            return True
        patterns = self.types_by_user.get(user, ())
        return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


def load_producers(path: Path | None, engine_user: str) -> Producers:
    if path is None:
        return Producers(engine_user)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProducersFileError(f"{path}: {exc}") from None
    table = document.get("producers")
    if not isinstance(table, dict):
        raise ProducersFileError(f"{path}: needs a [producers.<broker user>] table per producer")
    types_by_user: dict[str, tuple[str, ...]] = {}
    for user, entry in table.items():
        types = entry.get("types") if isinstance(entry, dict) else None
        if not _strings(types):
            raise ProducersFileError(f"{path}: producers.{user}.types must be a list of strings")
        types_by_user[user] = tuple(str(item) for item in types or ())
    return Producers(engine_user, types_by_user)


def _strings(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(item, str) and item for item in value)
    )
