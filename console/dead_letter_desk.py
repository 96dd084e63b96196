"""What the console does with dead letters, for its pages and its API alike: list, read one,
retry and purge, each action confirmed and written to the audit log with its operator.

Everything goes through the engine's own dead-letter code (`workers.dlq`, what `recourse dlq`
runs): a retry submits the stored body to the intake again under the broker user that first
sent it, and a purge deletes for good.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from console import audit
from console.accounts import Operator
from console.errors import ConsoleError, NotFoundError
from workers import dlq

MOST_AT_ONCE = dlq.PAGE_SIZE
"""One action takes the letters of one page at the most."""


def subject_of(dead_letter_id: int) -> str:
    """The audit log's subject for a dead letter."""
    return f"dead_letter:{dead_letter_id}"


@dataclass(frozen=True, slots=True)
class DeadLetterDesk:
    engine: Engine
    resubmit: dlq.Submitter
    """The intake a retried letter goes to."""
    clock: Callable[[], datetime]

    def listing(self, reason: str | None, before: int | None) -> dlq.Page:
        """One page of letters, newest first; `reason` one of `dlq.REASONS` or None (all)."""
        with self.engine.connect() as conn:
            return dlq.list_letters(conn, reason=checked_reason(reason), before=before)

    def letter(self, dead_letter_id: int) -> dlq.DeadLetter:
        with self.engine.connect() as conn:
            found = dlq.get_letter(conn, dead_letter_id)
        if found is None:
            raise NotFoundError(f"no dead letter {dead_letter_id}")
        return found

    def trail(self, dead_letter_id: int) -> list[audit.AuditEntry]:
        with self.engine.connect() as conn:
            return audit.entries(conn, subject=subject_of(dead_letter_id))

    def retry(self, who: Operator, ids: list[int], confirmed: bool) -> list[dlq.RetryOutcome]:
        letters = self._confirmed(ids, confirmed, "retry")
        outcomes = dlq.retry(self.engine, self.resubmit, [each.dead_letter_id for each in letters])
        by_id = {each.dead_letter_id: each for each in letters}
        with self.engine.begin() as conn:
            for outcome in outcomes:
                action = "dead_letter.retried" if outcome.retried else "dead_letter.kept"
                details = {**_described(by_id[outcome.dead_letter_id]), "detail": outcome.detail}
                audit.record(
                    conn,
                    at=self.clock(),
                    operator=who.name,
                    action=action,
                    subject=subject_of(outcome.dead_letter_id),
                    details=details,
                )
        return outcomes

    def purge(self, who: Operator, ids: list[int], confirmed: bool) -> list[int]:
        """The ids purged: those of the chosen letters still there at the delete."""
        letters = self._confirmed(ids, confirmed, "purge")
        with self.engine.begin() as conn:
            # Only what still exists at the delete, and the audit in the same transaction.
            present = dlq.chosen_ids(conn, ids=[each.dead_letter_id for each in letters])
            dlq.purge(conn, present)
            for each in letters:
                if each.dead_letter_id in present:
                    audit.record(
                        conn,
                        at=self.clock(),
                        operator=who.name,
                        action="dead_letter.purged",
                        subject=subject_of(each.dead_letter_id),
                        details=_described(each),
                    )
        return present

    def _confirmed(self, ids: list[int], confirmed: bool, verb: str) -> list[dlq.DeadLetter]:
        """The letters named, once the operator confirmed; every id must name a letter."""
        if not ids:
            raise ConsoleError(f"choose the dead letters to {verb}")
        if len(ids) > MOST_AT_ONCE:
            raise ConsoleError(f"{MOST_AT_ONCE} dead letters at a time at the most")
        if not confirmed:
            raise ConsoleError(f"tick the confirmation to {verb} {len(ids)} dead letter(s)")
        with self.engine.connect() as conn:
            found = {each: dlq.get_letter(conn, each) for each in sorted(set(ids))}
        missing = [str(each) for each, letter in found.items() if letter is None]
        if missing:
            raise NotFoundError(f"no dead letter {', '.join(missing)}")
        return [letter for letter in found.values() if letter is not None]


def checked_reason(text: str | None) -> str | None:
    if not text:
        return None
    if text not in dlq.REASONS:
        raise ConsoleError(f"reason is one of {', '.join(dlq.REASONS)}")
    return text


def _described(letter: dlq.DeadLetter) -> dict[str, Any]:
    """What the audit log keeps of a letter: enough to find it again, never its body."""
    return {
        "reason": letter.reason,
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "producer": letter.producer,
    }
