"""The dead letters: the rows of `dead_letters` that the intake and the drains write, read back,
sent through the intake again, or purged (the `recourse dlq` commands).

A letter is written by the engine alone: the intake refuses a message (`malformed`,
`unauthorized_producer`, `misrouted`) or a drain gives up on an event (`idempotency_conflict`,
`unknown_subject`, `handler_error`). Its reason is the engine's finding, never a field of the
message. The stored body may hold anything a producer sent (undecodable bytes already replaced,
at most 256 KiB of it): nothing here parses it to show it, and what is shown is escaped.

A retry submits the stored body to the intake again, which judges it as it judges a message
from the broker, under the broker user that first sent it, so a retry never lets through what
that user may not publish. The event is appended at the end of the log: it is applied after
every event of its key that the engine already received, not in its first place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from sqlalchemy import Connection, Engine, delete, func, select

from workers.intake.tables import dead_letters
from workers.operator.formats import iso

REASONS: Final = (
    "malformed",
    "misrouted",
    "unauthorized_producer",
    "idempotency_conflict",
    "unknown_subject",
    "handler_error",
)
"""Every reason the engine dead-letters for (MESSAGES.md, "Envelope")."""

PAGE_SIZE: Final = 50
REPLACEMENT: Final = "\ufffd"


class Submitter(Protocol):
    """What a retry needs of the intake (`workers.intake.service.Intake`)."""

    def submit(self, body: bytes | str, *, user_id: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    dead_letter_id: int
    log_seq: int | None
    reason: str
    problems: list[tuple[str, str]]
    event_id: str | None
    event_type: str | None
    routing_key: str | None
    producer: str | None
    body: str
    body_bytes: int
    received_at: datetime
    dead_at: datetime

    @property
    def body_intact(self) -> bool:
        """Whether the stored body is, byte for byte, the one received: neither cut at 256 KiB
        nor with undecodable bytes or NULs replaced."""
        return REPLACEMENT not in self.body and len(self.body.encode("utf-8")) == self.body_bytes

    def as_json(self, *, with_body: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "dead_letter_id": self.dead_letter_id,
            "log_seq": self.log_seq,
            "reason": self.reason,
            "problems": [list(problem) for problem in self.problems],
            "event_id": self.event_id,
            "event_type": self.event_type,
            "routing_key": self.routing_key,
            "producer": self.producer,
            "body_bytes": self.body_bytes,
            "body_intact": self.body_intact,
            "received_at": iso(self.received_at),
            "dead_at": iso(self.dead_at),
        }
        if with_body:
            fields["body"] = self.body
        return fields


@dataclass(frozen=True, slots=True)
class Page:
    letters: list[DeadLetter]
    total: int
    """Letters matching the filter, on every page."""
    next_before: int | None
    """The `before` of the next (older) page; None on the last page."""

    def as_json(self) -> dict[str, Any]:
        return {
            "dead_letters": [letter.as_json() for letter in self.letters],
            "total": self.total,
            "next_before": self.next_before,
        }


@dataclass(frozen=True, slots=True)
class RetryOutcome:
    dead_letter_id: int
    retried: bool
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "dead_letter_id": self.dead_letter_id,
            "retried": self.retried,
            "detail": self.detail,
        }


def list_letters(
    conn: Connection,
    *,
    reason: str | None = None,
    limit: int = PAGE_SIZE,
    before: int | None = None,
) -> Page:
    """Newest first; `before` (a dead_letter_id) starts the page below that letter."""
    matching = select(dead_letters)
    counted = select(func.count()).select_from(dead_letters)
    if reason is not None:
        matching = matching.where(dead_letters.c.reason == reason)
        counted = counted.where(dead_letters.c.reason == reason)
    total: int = conn.execute(counted).scalar_one()
    if before is not None:
        matching = matching.where(dead_letters.c.dead_letter_id < before)
    rows = conn.execute(
        matching.order_by(dead_letters.c.dead_letter_id.desc()).limit(limit + 1)
    ).all()
    letters = [_letter(row) for row in rows[:limit]]
    next_before = letters[-1].dead_letter_id if len(rows) > limit else None
    return Page(letters, total, next_before)


def get_letter(conn: Connection, dead_letter_id: int) -> DeadLetter | None:
    row = conn.execute(
        select(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id)
    ).first()
    return None if row is None else _letter(row)


def chosen_ids(
    conn: Connection, *, ids: Sequence[int] = (), reason: str | None = None, every: bool = False
) -> list[int]:
    """The ids of the letters named by id, by reason or all, oldest first."""
    query = select(dead_letters.c.dead_letter_id).order_by(dead_letters.c.dead_letter_id)
    if not every:
        if reason is not None:
            query = query.where(dead_letters.c.reason == reason)
        if ids:
            query = query.where(dead_letters.c.dead_letter_id.in_(list(ids)))
        if reason is None and not ids:
            return []
    return list(conn.execute(query).scalars())


def retry(engine: Engine, intake: Submitter, ids: Iterable[int]) -> list[RetryOutcome]:
    """Submit each letter's body to the intake again, oldest first, then delete the letter.

    The submit and the delete are two transactions: a crash between them leaves the letter in
    place with its event already in the log, and retrying it again is harmless (the second
    copy is a duplicate of the first by its `event_id`).
    """
    outcomes: list[RetryOutcome] = []
    for dead_letter_id in sorted(ids):
        with engine.connect() as conn:
            letter = get_letter(conn, dead_letter_id)
        if letter is None:
            outcomes.append(RetryOutcome(dead_letter_id, False, "no such dead letter"))
            continue
        refusal = _why_not_retried(letter)
        if refusal is not None:
            outcomes.append(RetryOutcome(dead_letter_id, False, refusal))
            continue
        intake.submit(letter.body.encode("utf-8"), user_id=letter.producer)
        with engine.begin() as conn:
            conn.execute(
                delete(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id)
            )
        outcomes.append(
            RetryOutcome(dead_letter_id, True, f"submitted again as {letter.producer!r}")
        )
    return outcomes


def purge(conn: Connection, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    deleted = conn.execute(
        delete(dead_letters).where(dead_letters.c.dead_letter_id.in_(list(ids)))
    ).rowcount
    return int(deleted)


def _why_not_retried(letter: DeadLetter) -> str | None:
    if letter.producer is None:
        # The judge would refuse it again; submitting it as anyone else would forge a user.
        return "its message carried no user_id; the producer must publish it again"
    if not letter.body_intact:
        return (
            f"the stored body is not the one received ({letter.body_bytes} bytes, cut or with "
            "undecodable bytes replaced); the producer must publish it again"
        )
    return None


def _letter(row: Any) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=row.dead_letter_id,
        log_seq=row.log_seq,
        reason=row.reason,
        problems=_problems(row.problems),
        event_id=row.event_id,
        event_type=row.event_type,
        routing_key=row.routing_key,
        producer=row.producer,
        body=row.body,
        body_bytes=row.body_bytes,
        received_at=row.received_at,
        dead_at=row.dead_at,
    )


def _problems(text: str) -> list[tuple[str, str]]:
    """The stored list of [field, problem]; anything else is shown whole as one problem."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return [("problems", text)]
    if isinstance(value, list) and all(
        isinstance(item, list) and len(item) == 2 and all(isinstance(part, str) for part in item)
        for item in value
    ):
        return [(field, problem) for field, problem in value]
    return [("problems", text)]


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` safe for a terminal: every character that is not printable (controls, escape
    sequences, bidirectional overrides, lone surrogates, the replacement character that stands
    for undecodable bytes) becomes a `\\x..`, `\\u....` or `\\U........` escape."""
    out: list[str] = []
    for char in text:
        shown = char == " " or (char.isprintable() and char != REPLACEMENT)
        if shown or (char == "\n" and keep_newlines):
            out.append(char)
        else:
            code = ord(char)
            if code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)
