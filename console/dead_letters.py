"""The dead letters in the console, for administrators: list (filtered by reason, paged by
index), one letter with its body shown as text, retry and purge.

Everything here goes through the engine's own dead-letter code (`workers.dlq`, what
`recourse dlq` runs): a retry submits the stored body to the intake again under the broker
user that first sent it, and a purge deletes for good. Both need the form's CSRF token and an
explicit confirmation, and each letter acted on is written to the audit log with its operator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from console import audit
from console.accounts import Operator
from console.errors import ConsoleError, NotFoundError
from console.roles import Permission
from console.routing import Guards
from workers import dlq

MANAGE = Permission.MANAGE_DEAD_LETTERS
Verb = Literal["retry", "purge"]
MOST_AT_ONCE = dlq.PAGE_SIZE
"""A form acts on the letters of one page at the most."""


class LetterChoice(BaseModel):
    """The JSON twin of the forms: which letters, and the confirmation."""

    ids: list[int] = Field(min_length=1, max_length=MOST_AT_ONCE)
    confirm: bool = False


@dataclass(frozen=True, slots=True)
class LetterForm:
    """What the retry and purge forms send: the chosen letters, the confirmation box (value
    `yes`), the CSRF token."""

    ids: list[int]
    confirmed: bool
    csrf_token: str


def _letter_form(
    ids: Annotated[list[int] | None, Form()] = None,
    confirm: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> LetterForm:
    return LetterForm(ids or [], confirm == "yes", csrf_token)


def subject_of(dead_letter_id: int) -> str:
    """The audit log's subject for a dead letter."""
    return f"dead_letter:{dead_letter_id}"


def dead_letter_router(
    engine: Engine,
    resubmit: dlq.Submitter,
    guards: Guards,
    clock: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter()

    def listing(reason: str | None, before: int | None) -> dict[str, Any]:
        chosen = _reason(reason)
        with engine.connect() as conn:
            page = dlq.list_letters(conn, reason=chosen, before=before)
        return {"page": page, "reason": chosen, "reasons": dlq.REASONS}

    def letter(dead_letter_id: int) -> dlq.DeadLetter:
        with engine.connect() as conn:
            found = dlq.get_letter(conn, dead_letter_id)
        if found is None:
            raise NotFoundError(f"no dead letter {dead_letter_id}")
        return found

    def retry(who: Operator, ids: list[int], confirmed: bool) -> list[dlq.RetryOutcome]:
        letters = _confirmed(engine, ids, confirmed, "retry")
        outcomes = dlq.retry(engine, resubmit, [each.dead_letter_id for each in letters])
        by_id = {each.dead_letter_id: each for each in letters}
        with engine.begin() as conn:
            for outcome in outcomes:
                action = "dead_letter.retried" if outcome.retried else "dead_letter.kept"
                details = {**_described(by_id[outcome.dead_letter_id]), "detail": outcome.detail}
                audit.record(
                    conn,
                    at=clock(),
                    operator=who.name,
                    action=action,
                    subject=subject_of(outcome.dead_letter_id),
                    details=details,
                )
        return outcomes

    def purge(who: Operator, ids: list[int], confirmed: bool) -> list[int]:
        letters = _confirmed(engine, ids, confirmed, "purge")
        with engine.begin() as conn:
            # Only what still exists at the delete, and the audit in the same transaction.
            present = dlq.chosen_ids(conn, ids=[each.dead_letter_id for each in letters])
            dlq.purge(conn, present)
            for each in letters:
                if each.dead_letter_id in present:
                    audit.record(
                        conn,
                        at=clock(),
                        operator=who.name,
                        action="dead_letter.purged",
                        subject=subject_of(each.dead_letter_id),
                        details=_described(each),
                    )
        return present

    @router.get("/dead-letters", response_class=HTMLResponse)
    def list_page(
        request: Request, reason: str | None = None, before: int | None = Query(None, ge=1)
    ) -> HTMLResponse:
        who = guards.operator(request, MANAGE)
        return guards.page(request, "dead_letters.html", who, **listing(reason, before))

    @router.get("/api/dead-letters")
    def list_api(
        request: Request, reason: str | None = None, before: int | None = Query(None, ge=1)
    ) -> dict[str, Any]:
        guards.operator(request, MANAGE)
        page: dlq.Page = listing(reason, before)["page"]
        return page.as_json()

    @router.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
    def letter_page(request: Request, dead_letter_id: int) -> HTMLResponse:
        who = guards.operator(request, MANAGE)
        found = letter(dead_letter_id)
        with engine.connect() as conn:
            trail = audit.entries(conn, subject=subject_of(dead_letter_id))
        return guards.page(request, "dead_letter.html", who, letter=found, audit=trail)

    @router.get("/api/dead-letters/{dead_letter_id}")
    def letter_api(request: Request, dead_letter_id: int) -> dict[str, Any]:
        guards.operator(request, MANAGE)
        return letter(dead_letter_id).as_json(with_body=True)

    def act(who: Operator, verb: Verb, ids: list[int], confirmed: bool) -> dict[str, Any]:
        if verb == "retry":
            outcomes = retry(who, ids, confirmed)
            return {"letters": [outcome.as_json() for outcome in outcomes]}
        return {"purged": purge(who, ids, confirmed)}

    @router.post("/dead-letters/{verb}", response_class=HTMLResponse)
    def act_form(
        request: Request, verb: Verb, form: Annotated[LetterForm, Depends(_letter_form)]
    ) -> HTMLResponse:
        who = guards.acting(request, MANAGE, form.csrf_token)
        done = act(who, verb, form.ids, form.confirmed)
        return guards.page(request, "dead_letters_done.html", who, verb=verb, **done)

    @router.post("/api/dead-letters/{verb}")
    def act_api(request: Request, verb: Verb, body: LetterChoice) -> dict[str, Any]:
        who = guards.acting(request, MANAGE, None)
        return act(who, verb, body.ids, body.confirm)

    return router


def _reason(text: str | None) -> str | None:
    if not text:
        return None
    if text not in dlq.REASONS:
        raise ConsoleError(f"reason is one of {', '.join(dlq.REASONS)}")
    return text


def _confirmed(engine: Engine, ids: list[int], confirmed: bool, verb: str) -> list[dlq.DeadLetter]:
    """The letters named, once the operator confirmed; every id must name a letter."""
    if not ids:
        raise ConsoleError(f"choose the dead letters to {verb}")
    if len(ids) > MOST_AT_ONCE:
        raise ConsoleError(f"{MOST_AT_ONCE} dead letters at a time at the most")
    if not confirmed:
        raise ConsoleError(f"tick the confirmation to {verb} {len(ids)} dead letter(s)")
    with engine.connect() as conn:
        found = {each: dlq.get_letter(conn, each) for each in sorted(set(ids))}
    missing = [str(each) for each, letter in found.items() if letter is None]
    if missing:
        raise NotFoundError(f"no dead letter {', '.join(missing)}")
    return [letter for letter in found.values() if letter is not None]


def _described(letter: dlq.DeadLetter) -> dict[str, Any]:
    """What the audit log keeps of a letter: enough to find it again, never its body."""
    return {
        "reason": letter.reason,
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "producer": letter.producer,
    }
