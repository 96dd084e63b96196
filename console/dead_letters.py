"""The dead letters' pages, for administrators: list (filtered by reason, paged by index), one
letter with its body shown as text, retry and purge.

The actions are `console.dead_letter_desk`'s (the API's `/api/v1/dead-letters` takes the same).
Retry and purge need the form's CSRF token and the ticked confirmation box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse

from console.accounts import Operator
from console.dead_letter_desk import DeadLetterDesk, checked_reason
from console.roles import Permission
from console.routing import Guards
from workers import dlq

MANAGE = Permission.MANAGE_DEAD_LETTERS
Verb = Literal["retry", "purge"]


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


def dead_letter_router(desk: DeadLetterDesk, guards: Guards) -> APIRouter:
    router = APIRouter()

    @router.get("/dead-letters", response_class=HTMLResponse)
    def list_page(
        request: Request, reason: str | None = None, before: int | None = Query(None, ge=1)
    ) -> HTMLResponse:
        who = guards.operator(request, MANAGE)
        chosen = checked_reason(reason)
        page = desk.listing(chosen, before)
        return guards.page(
            request, "dead_letters.html", who, page=page, reason=chosen, reasons=dlq.REASONS
        )

    @router.get("/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
    def letter_page(request: Request, dead_letter_id: int) -> HTMLResponse:
        who = guards.operator(request, MANAGE)
        found = desk.letter(dead_letter_id)
        trail = desk.trail(dead_letter_id)
        return guards.page(request, "dead_letter.html", who, letter=found, audit=trail)

    def act(who: Operator, verb: Verb, ids: list[int], confirmed: bool) -> dict[str, Any]:
        if verb == "retry":
            return {"letters": desk.retry(who, ids, confirmed)}
        return {"purged": desk.purge(who, ids, confirmed)}

    @router.post("/dead-letters/{verb}", response_class=HTMLResponse)
    def act_form(
        request: Request, verb: Verb, form: Annotated[LetterForm, Depends(_letter_form)]
    ) -> HTMLResponse:
        who = guards.acting(request, MANAGE, form.csrf_token)
        done = act(who, verb, form.ids, form.confirmed)
        return guards.page(request, "dead_letters_done.html", who, verb=verb, **done)

    return router
