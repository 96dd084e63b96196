"""The console's web application: server-rendered pages and the same reads and actions as JSON.

The same reads and decisions as JSON are the API of `console.api` (`/api/v1`). Every route
names the permission it needs and checks it on the server; every form carries the session's
CSRF token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Connection, Engine
from starlette.middleware.sessions import SessionMiddleware

from console import accounts, audit
from console.accounts import Operator
from console.api import install_api
from console.dead_letter_desk import DeadLetterDesk
from console.dead_letters import dead_letter_router
from console.decisions import DecisionDesk, Publisher, wall_clock
from console.errors import ConsoleError, NotSignedIn
from console.oidc import OidcSignIn
from console.preview import OUTCOMES
from console.problems import is_api, problem_response
from console.publishing import embedded_intake
from console.queries import (
    QueueFilter,
    decisions_of,
    evidence_of,
    load_case,
    queue_page,
    queue_row,
    support_queue,
)
from console.roles import Permission, can, require
from console.routing import Guards
from console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOCAL,
    check_csrf,
    csrf_token,
    current_operator,
    sign_in,
)
from console.settings import ConsoleSettings
from messages.inbound import DisputeOutcome
from policy.config import PolicySet
from workers.dlq import Submitter, printable
from workers.operator.errors import NotFound, OperatorError
from workers.operator.formats import format_age, iso
from workers.operator.statements import account_balance, currencies_of, statement
from workers.operator.timeline import contract_timeline
from workers.statement import format_minor

HERE = Path(__file__).parent
WHERE = "the engine's database"
SESSION_COOKIE = "recourse_console"


@dataclass(frozen=True, slots=True)
class Console:
    engine: Engine
    policies: PolicySet
    desk: DecisionDesk
    dead_letters: DeadLetterDesk
    settings: ConsoleSettings
    templates: Jinja2Templates
    oidc: OidcSignIn | None
    clock: Callable[[], datetime]

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn


def create_app(
    engine: Engine,
    policies: PolicySet,
    publisher: Publisher,
    settings: ConsoleSettings,
    *,
    secret_key: str,
    clock: Callable[[], datetime] = wall_clock,
    resubmit: Submitter | None = None,
) -> FastAPI:
    """`resubmit`: the intake a dead letter's retry goes to (default: the embedded one, which
    applies it at once)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["money"] = lambda minor, currency: format_minor(minor, currency or "")
    templates.env.filters["iso"] = iso
    templates.env.filters["age"] = format_age
    templates.env.filters["printable"] = lambda text: printable(text, keep_newlines=True)
    console = Console(
        engine=engine,
        policies=policies,
        desk=DecisionDesk(
            engine,
            policies,
            publisher,
            four_eyes_above_minor=settings.console_four_eyes_above_minor,
            clock=clock,
        ),
        dead_letters=DeadLetterDesk(engine, resubmit or embedded_intake(engine, policies), clock),
        settings=settings,
        templates=templates,
        oidc=OidcSignIn(settings) if settings.oidc_enabled else None,
        clock=clock,
    )
    # The OpenAPI document is the API's alone: console.api serves it under /api/v1.
    app = FastAPI(title="Recourse console", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=settings.console_idle_minutes * 60,
        same_site="lax",
        https_only=settings.console_secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_exception_handler(ConsoleError, _console_error)  # type: ignore[arg-type]
    app.add_exception_handler(OperatorError, _operator_error)  # type: ignore[arg-type]
    guards = _routes(app, console)
    app.include_router(dead_letter_router(console.dead_letters, guards))
    install_api(app, console)
    return app


def _console_error(request: Request, exc: ConsoleError) -> Response:
    if is_api(request):
        return problem_response(exc.status, exc.message)
    if isinstance(exc, NotSignedIn):
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
    return _error_page(request, exc.message, exc.status)


def _operator_error(request: Request, exc: OperatorError) -> Response:
    status = 404 if isinstance(exc, NotFound) else 400
    if is_api(request):
        return problem_response(status, exc.problem)
    return _error_page(request, exc.problem, status)


def _error_page(request: Request, message: str, status: int) -> Response:
    console: Console = request.app.state.console
    return console.templates.TemplateResponse(
        request,
        "error.html",
        {"message": message, "operator": None, "csrf": csrf_token(request.session)},
        status_code=status,
    )


def _routes(app: FastAPI, console: Console) -> Guards:  # noqa: PLR0915 - one route table
    settings = console.settings
    idle_seconds = settings.console_idle_minutes * 60

    def operator(request: Request, permission: Permission | None = None) -> Operator:
        who = current_operator(
            request.session, console.engine, idle_seconds=idle_seconds, now=time.time()
        )
        if permission is not None:
            require(who.role, permission)
        return who

    def acting(request: Request, permission: Permission, form_token: str | None) -> Operator:
        who = operator(request, permission)
        check_csrf(request.session, form_token or request.headers.get(CSRF_HEADER))
        return who

    def page(request: Request, name: str, who: Operator, **context: Any) -> HTMLResponse:
        return console.templates.TemplateResponse(
            request,
            name,
            {
                "operator": who,
                "csrf": csrf_token(request.session),
                "csrf_field": CSRF_FIELD,
                "can": lambda permission: can(who.role, Permission(permission)),
                **context,
            },
        )

    # Sign-in and sign-out

    def signin_page(
        request: Request, next: str, error: str | None = None, status: int = 200
    ) -> HTMLResponse:
        return console.templates.TemplateResponse(
            request,
            "signin.html",
            {
                "operator": None,
                "csrf": csrf_token(request.session),
                "csrf_field": CSRF_FIELD,
                "next": _local_path(next),
                "oidc": console.oidc is not None,
                "error": error,
            },
            status_code=status,
        )

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request, next: str = "/disputes") -> HTMLResponse:
        return signin_page(request, next)

    @app.post("/signin", response_model=None)
    def signin(
        request: Request,
        name: str = Form(""),
        password: str = Form(""),
        csrf_token_: str = Form("", alias=CSRF_FIELD),
        next: str = Form("/disputes"),
    ) -> Response:
        check_csrf(request.session, csrf_token_)
        at = console.clock()
        who: Operator | None = None
        with console.engine.begin() as conn:
            try:
                who = accounts.authenticate(
                    conn,
                    name,
                    password,
                    at=at,
                    limit=settings.console_signin_failures,
                    window=timedelta(minutes=settings.console_signin_window_minutes),
                )
            except ConsoleError as refused:
                audit.record(conn, at=at, operator=name, action="signin.throttled", subject=name)
                error, status = refused.message, refused.status
            else:
                action = "signin" if who else "signin.failed"
                audit.record(conn, at=at, operator=name, action=action, subject=name)
                error, status = "wrong name or password", 401
        if who is None:
            return signin_page(request, next, error, status)
        sign_in(request.session, who, LOCAL)
        return RedirectResponse(_local_path(next), status_code=303)

    @app.post("/signout")
    def signout(
        request: Request, csrf_token_: str = Form("", alias=CSRF_FIELD)
    ) -> RedirectResponse:
        check_csrf(request.session, csrf_token_)
        name = request.session.get("operator")
        if isinstance(name, str):
            with console.engine.begin() as conn:
                audit.record(
                    conn, at=console.clock(), operator=name, action="signout", subject=name
                )
        request.session.clear()
        return RedirectResponse("/signin", status_code=303)

    if console.oidc is not None:
        console.oidc.add_routes(app, console.engine, console.clock)

    @app.get("/")
    def home() -> RedirectResponse:
        return RedirectResponse("/disputes", status_code=303)

    # The dispute queue

    def queue_data(
        request: Request,
        *,
        status: str,
        policy: str | None,
        min_minor: int | None,
        max_minor: int | None,
        after: str | None,
    ) -> tuple[Operator, dict[str, Any]]:
        who = operator(request, Permission.READ_DISPUTES)
        try:
            filters = QueueFilter(status, policy or None, min_minor, max_minor)
        except ValueError as exc:
            raise ConsoleError(str(exc)) from None
        now = console.clock()
        with console.reading() as conn:
            try:
                result = queue_page(conn, console.policies, now, filters, after=after or None)
            except ValueError as exc:
                raise ConsoleError(f"bad cursor: {exc}") from None
        return who, {"now": now, "filters": filters, "page": result}

    @app.get("/disputes", response_class=HTMLResponse)
    def queue(
        request: Request,
        *,
        status: str = "open",
        policy: str | None = None,
        min_minor: int | None = Query(None, ge=0),
        max_minor: int | None = Query(None, ge=0),
        after: str | None = None,
    ) -> HTMLResponse:
        who, data = queue_data(
            request,
            status=status,
            policy=policy,
            min_minor=min_minor,
            max_minor=max_minor,
            after=after,
        )
        return page(request, "queue.html", who, policies=console.policies.names(), **data)

    # One dispute

    def dispute_data(request: Request, dispute_id: str) -> tuple[Operator, dict[str, Any]]:
        who = operator(request, Permission.READ_DISPUTES)
        now = console.clock()
        with console.reading() as conn:
            case = load_case(conn, dispute_id)
            queued = queue_row(conn, console.policies, now, case)
            timeline = contract_timeline(conn, case.dispute.contract_id, where=WHERE)
            evidence = evidence_of(conn, dispute_id)
            decisions = decisions_of(conn, case.dispute.contract_id)
            trail = audit.entries(conn, subject=dispute_id)
        proposals = [
            item for item in console.desk.proposals(status=None) if item.subject_id == dispute_id
        ]
        return who, {
            "case": case,
            "queued": queued,
            "timeline": timeline,
            "evidence": evidence,
            "decisions": decisions,
            "audit": trail,
            "proposals": proposals,
            "four_eyes_above_minor": console.desk.four_eyes_above_minor,
        }

    @app.get("/disputes/{dispute_id}", response_class=HTMLResponse)
    def dispute_page(request: Request, dispute_id: str) -> HTMLResponse:
        who, data = dispute_data(request, dispute_id)
        return page(request, "dispute.html", who, outcomes=OUTCOMES, **data)

    def preview_data(
        request: Request, dispute_id: str, outcome: str, amount_minor: int | None
    ) -> dict[str, Any]:
        operator(request, Permission.READ_DISPUTES)
        chosen = _outcome(outcome)
        preview = console.desk.preview(
            dispute_id, chosen, amount_minor if chosen == "partial_refund" else None
        )
        return {
            "preview": preview,
            "needs_approval": preview.moves_minor > console.desk.four_eyes_above_minor,
        }

    @app.get("/disputes/{dispute_id}/preview", response_class=HTMLResponse)
    def preview_fragment(
        request: Request,
        dispute_id: str,
        outcome: str = "partial_refund",
        amount_minor: str = "",
    ) -> HTMLResponse:
        data = preview_data(request, dispute_id, outcome, _int_or_none(amount_minor))
        return console.templates.TemplateResponse(request, "preview.html", data)

    @app.post("/disputes/{dispute_id}/decision", response_model=None)
    def decide_form(
        request: Request,
        dispute_id: str,
        form: Annotated[DecisionForm, Depends(_decision_form)],
        outcome: str = Form(...),
    ) -> Response:
        who = acting(request, Permission.DECIDE_DISPUTES, form.csrf_token)
        chosen = _outcome(outcome)
        amount = form.amount_minor if chosen == "partial_refund" else None
        console.desk.decide_dispute(
            who, dispute_id, chosen, amount, reason=form.reason, note=form.note
        )
        return RedirectResponse(f"/disputes/{dispute_id}", status_code=303)

    # Support: refund requests only support can decide now

    def support_data(request: Request) -> tuple[Operator, dict[str, Any]]:
        who = operator(request, Permission.READ_SUPPORT)
        now = console.clock()
        with console.reading() as conn:
            items = support_queue(conn, console.policies, now)
        return who, {"now": now, "requests": items}

    @app.get("/support", response_class=HTMLResponse)
    def support_page(request: Request) -> HTMLResponse:
        who, data = support_data(request)
        return page(request, "support.html", who, **data)

    @app.post("/support/{request_id}/decision", response_model=None)
    def support_form(
        request: Request,
        request_id: str,
        form: Annotated[DecisionForm, Depends(_decision_form)],
        decision: str = Form(...),
    ) -> Response:
        who = acting(request, Permission.DECIDE_REFUNDS, form.csrf_token)
        console.desk.decide_refund(
            who,
            request_id,
            approve=_approve(decision),
            amount_minor=form.amount_minor,
            reason=form.reason,
            note=form.note,
        )
        return RedirectResponse("/support", status_code=303)

    # Proposals waiting for a second operator (OP-2)

    def proposals_data(request: Request) -> tuple[Operator, dict[str, Any]]:
        who = operator(request)
        if not (can(who.role, Permission.READ_DISPUTES) or can(who.role, Permission.READ_SUPPORT)):
            require(who.role, Permission.READ_DISPUTES)
        return who, {"proposals": console.desk.proposals()}

    @app.get("/proposals", response_class=HTMLResponse)
    def proposals_page(request: Request) -> HTMLResponse:
        who, data = proposals_data(request)
        return page(request, "proposals.html", who, **data)

    @app.post("/proposals/{proposal_id}/{verdict}", response_model=None)
    def review_form(
        request: Request,
        proposal_id: str,
        verdict: Literal["approve", "reject"],
        reason: str = Form(""),
        csrf_token_: str = Form("", alias=CSRF_FIELD),
    ) -> Response:
        who = operator(request)
        check_csrf(request.session, csrf_token_ or request.headers.get(CSRF_HEADER))
        _review(console.desk, who, proposal_id, verdict, reason)
        return RedirectResponse("/proposals", status_code=303)

    # A contract's story and an account's statement

    def contract_data(request: Request, contract_id: str) -> tuple[Operator, Any]:
        who = operator(request, Permission.READ_MONEY)
        with console.reading() as conn:
            timeline = contract_timeline(conn, contract_id, where=WHERE)
            decisions = decisions_of(conn, contract_id)
        return who, {"timeline": timeline, "decisions": decisions}

    @app.get("/contracts/{contract_id}", response_class=HTMLResponse)
    def contract_page(request: Request, contract_id: str) -> HTMLResponse:
        who, data = contract_data(request, contract_id)
        return page(request, "contract.html", who, **data)

    def statement_data(
        request: Request, account: str, since: datetime | None, until: datetime | None
    ) -> tuple[Operator, dict[str, Any]]:
        who = operator(request, Permission.READ_MONEY)
        with console.reading() as conn:
            currencies = currencies_of(conn, account, None, where=WHERE)
            balances = [account_balance(conn, account, each) for each in currencies]
            statements = [
                statement(conn, account, each, since=since, until=until) for each in currencies
            ]
        return who, {"account": account, "balances": balances, "statements": statements}

    @app.get("/accounts/{account}", response_class=HTMLResponse)
    def statement_page(
        request: Request, account: str, since: datetime | None = None, until: datetime | None = None
    ) -> HTMLResponse:
        who, data = statement_data(request, account, since, until)
        return page(request, "statement.html", who, **data)

    # The audit log

    def audit_data(request: Request, before: int | None) -> tuple[Operator, dict[str, Any]]:
        who = operator(request, Permission.READ_AUDIT)
        with console.reading() as conn:
            entries = audit.entries(conn, before_seq=before)
        return who, {"entries": entries, "next": entries[-1].seq if len(entries) == 100 else None}

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request, before: int | None = None) -> HTMLResponse:
        who, data = audit_data(request, before)
        return page(request, "audit.html", who, **data)

    return Guards(operator=operator, acting=acting, page=page)


@dataclass(frozen=True, slots=True)
class DecisionForm:
    """The fields the dispute team's and support's decision forms share."""

    amount_minor: int | None
    reason: str
    note: str
    csrf_token: str


def _decision_form(
    amount_minor: str = Form(""),
    reason: str = Form(""),
    note: str = Form(""),
    csrf_token: str = Form("", alias=CSRF_FIELD),
) -> DecisionForm:
    return DecisionForm(_int_or_none(amount_minor), reason, note, csrf_token)


def _review(desk: DecisionDesk, who: Operator, proposal_id: str, verdict: str, reason: str) -> None:
    if verdict == "approve":
        desk.approve(who, proposal_id)
    else:
        desk.reject(who, proposal_id, reason=reason)


def _outcome(text: str) -> DisputeOutcome:
    for outcome in OUTCOMES:
        if outcome == text:
            return outcome
    raise ConsoleError(f"outcome is one of {', '.join(OUTCOMES)}")


def _approve(text: str) -> bool:
    if text not in ("approve", "decline"):
        raise ConsoleError("decision is approve or decline")
    return text == "approve"


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConsoleError(f"{text!r} is not a whole number of minor units") from None


def _local_path(target: str) -> str:
    # Only a path of this site: never send a freshly signed-in operator to another host.
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/disputes"
