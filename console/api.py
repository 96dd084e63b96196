"""The back office's HTTP JSON API, `/api/v1`: the console's reads and decisions.

A request authenticates with `Authorization: Bearer <token>` (`recourse tokens add`), or with
the console's session cookie; a cookie session's write also needs the session's CSRF token in
`X-CSRF-Token`, so a page of another site cannot act with an operator's cookie. A bearer
request carries no ambient credential, so CSRF does not apply to it. Every route checks the
caller's role on the server; decisions go through the same `DecisionDesk` as the pages, with
`decided_by` the token's owner (OP-1) and four eyes above the threshold (OP-2); dead letters
go through the same `DeadLetterDesk` as the pages, audited with the caller.

The response models below are the OpenAPI document's schemas (docs/openapi.json); the
engine's own dataclasses are used as they are wherever their shape is the answer's.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from console import audit
from console.accounts import Operator
from console.audit import AuditEntry
from console.dead_letter_desk import MOST_AT_ONCE
from console.decisions import Outcome, OutcomeStatus, Proposal
from console.errors import ConsoleError, NotSignedIn
from console.preview import Preview
from console.problems import install_problem_handlers, problem_responses, problem_schemas
from console.queries import (
    PAGE_SIZE,
    DecisionRecord,
    Evidence,
    QueueFilter,
    SupportItem,
    decisions_of,
    evidence_of,
    load_case,
    queue_page,
    queue_row,
    support_queue,
)
from console.roles import Permission, can, require
from console.security import CSRF_HEADER, check_csrf, current_operator
from console.tokens import operator_of_token
from messages.inbound import DisputeOutcome
from policy.state import ContractState, DisputeState, RefundRequestState, TargetState
from workers.dlq import REASONS, RetryOutcome
from workers.operator.disputes import QueuedDispute
from workers.operator.entries import TransferLine
from workers.operator.statements import (
    AccountBalance,
    Statement,
    account_balance,
    currencies_of,
    statement,
)
from workers.operator.timeline import (
    ContractTimeline,
    OpenDeadline,
    StoryLine,
    contract_timeline,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from console.app import Console

PREFIX = "/api/v1"
VERSION = "1.0.0"
WHERE = "the engine's database"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_PAGE = 200
MAX_MINOR = 2**63 - 1  # PostgreSQL BIGINT: amounts beyond it are no amount of money
MAX_SEQ = 2**31 - 1  # the audit log's INTEGER sequence
MAX_LETTER_ID = 2**63 - 1  # dead_letters.dead_letter_id is a BIGINT
AUDIT_PAGE = 100

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token from `recourse tokens add OWNER --role ROLE`.",
)

# Response models


class DisputePage(BaseModel):
    now: datetime = Field(description="The time the SLA states were computed at.")
    disputes: list[QueuedDispute]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class TargetMoney(BaseModel):
    target: TargetState
    held_in_escrow_minor: int
    refundable_minor: int


class ContractStory(BaseModel):
    contract_id: str
    contract: ContractState | None = Field(
        description="Null when every event naming the contract was refused."
    )
    net_value_minor: int | None = Field(description="Paid less refunded.")
    story: list[StoryLine]
    targets: list[TargetMoney]
    refund_requests: list[RefundRequestState]
    disputes: list[DisputeState]
    open_deadlines: list[OpenDeadline]
    transfers: list[TransferLine]
    decisions: list[DecisionRecord] = Field(description="With the operator who took each.")


class DisputeDetail(BaseModel):
    dispute: QueuedDispute
    contract: ContractStory
    evidence: list[Evidence] | None = Field(
        description="Both parties' evidence (OP-3); null when the store keeps none."
    )
    proposals: list[Proposal]
    audit: list[AuditEntry]


class DecisionPreview(BaseModel):
    preview: Preview = Field(description="The split the engine's own refund code computes.")
    moves_minor: int = Field(description="The most that goes to or from one party.")
    needs_approval: bool = Field(description="Above the four-eyes threshold (OP-2).")


class DecisionResult(BaseModel):
    status: OutcomeStatus
    event_id: str | None = Field(description="The event sent to the engine, once published.")
    proposal_id: str | None = Field(description="Set when a second operator must approve.")
    preview: DecisionPreview | None = None


class SupportQueue(BaseModel):
    now: datetime
    requests: list[SupportItem]


class ProposalList(BaseModel):
    proposals: list[Proposal]


class AccountStatement(BaseModel):
    account: str
    balances: list[AccountBalance]
    statements: list[Statement]


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    next_before: int | None = Field(description="Pass as `before` for older entries.")


class DeadLetterSummary(BaseModel):
    dead_letter_id: int
    log_seq: int | None = Field(description="Its place in the intake log, if it got there.")
    reason: str = Field(description=f"One of {', '.join(REASONS)}.")
    problems: list[list[str]] = Field(description="[field, problem] pairs.")
    event_id: str | None
    event_type: str | None
    routing_key: str | None
    producer: str | None = Field(description="The broker user that sent it.")
    body_bytes: int = Field(description="The size of the body as received.")
    body_intact: bool = Field(
        description="The stored body is the one received (not cut, no bytes replaced)."
    )
    received_at: datetime
    dead_at: datetime


class DeadLetterDetail(DeadLetterSummary):
    body: str = Field(description="The body as stored: at most 256 KiB, as text.")


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterSummary]
    total: int = Field(description="Letters matching the filter, on every page.")
    next_before: int | None = Field(description="Pass as `before` for older letters.")


class RetryResult(BaseModel):
    letters: list[RetryOutcome] = Field(
        description="Each letter retried, or kept with the reason it cannot be."
    )


class PurgeResult(BaseModel):
    purged: list[int] = Field(description="The ids deleted.")


# Request bodies


class DisputeDecision(BaseModel):
    outcome: DisputeOutcome
    amount_minor: int | None = Field(
        default=None,
        gt=0,
        le=MAX_MINOR,
        description="The refund of a partial_refund, in minor units.",
    )
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    note: str = Field(default="", max_length=10_000)


class RefundDecision(BaseModel):
    decision: Literal["approve", "decline"]
    amount_minor: int | None = Field(
        default=None,
        gt=0,
        le=MAX_MINOR,
        description="Approve less than requested; default all of it.",
    )
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    note: str = Field(default="", max_length=10_000)


class Review(BaseModel):
    reason: str = Field(default="", max_length=2000)


class LetterChoice(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_LETTER_ID)]] = Field(
        min_length=1, max_length=MOST_AT_ONCE
    )
    confirm: bool = Field(default=False, description="Must be true: nothing is done otherwise.")


def _preview(preview: Preview, threshold: int) -> DecisionPreview:
    return DecisionPreview(
        preview=preview,
        moves_minor=preview.moves_minor,
        needs_approval=preview.moves_minor > threshold,
    )


def _result(outcome: Outcome, threshold: int) -> DecisionResult:
    return DecisionResult(
        status=outcome.status,
        event_id=outcome.event_id,
        proposal_id=outcome.proposal_id,
        preview=_preview(outcome.preview, threshold) if outcome.preview else None,
    )


def _story(timeline: ContractTimeline, decisions: list[DecisionRecord]) -> ContractStory:
    contract = timeline.contract
    return ContractStory(
        contract_id=timeline.contract_id,
        contract=contract,
        net_value_minor=contract.net_value_minor if contract is not None else None,
        story=timeline.story,
        targets=[
            TargetMoney(
                target=target,
                held_in_escrow_minor=target.held_in_escrow_minor,
                refundable_minor=target.refundable_minor,
            )
            for target in timeline.targets
        ],
        refund_requests=timeline.refund_requests,
        disputes=timeline.disputes,
        open_deadlines=timeline.open_deadlines,
        transfers=timeline.transfers,
        decisions=decisions,
    )


def read_story(conn: Connection, contract_id: str) -> ContractStory:
    return _story(
        contract_timeline(conn, contract_id, where=WHERE), decisions_of(conn, contract_id)
    )


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Operator:
    """The operator a request acts as: its bearer token's owner, or its session's operator."""
    console: Console = request.app.state.console
    if any(
        "\x00" in value for value in [*request.path_params.values(), *request.query_params.values()]
    ):
        # No id or name holds NUL, and PostgreSQL text cannot: refuse before any query.
        raise ConsoleError("a path or query parameter may not contain NUL characters")
    if "authorization" in request.headers:
        if credentials is None:
            raise NotSignedIn("the Authorization header takes `Bearer <token>`")
        with console.engine.connect() as conn:
            who = operator_of_token(conn, credentials.credentials)
        if who is None:
            raise NotSignedIn("the token is unknown or revoked")
        return who
    if "operator" not in request.session:
        raise NotSignedIn("send Authorization: Bearer <token>, or sign in to the console")
    who = current_operator(
        request.session,
        console.engine,
        idle_seconds=console.settings.console_idle_minutes * 60,
        now=time.time(),
    )
    if request.method not in SAFE_METHODS:
        # A cookie rides along with any request the browser makes: a write needs the token
        # only the console's own pages know.
        check_csrf(request.session, request.headers.get(CSRF_HEADER))
    return who


Caller = Annotated[Operator, Depends(caller)]


def build_router(console: Console) -> APIRouter:  # noqa: PLR0915 - one route table
    router = APIRouter(
        prefix=PREFIX,
        tags=["back office"],
        responses=problem_responses(400, 401, 403, 404, 409, 422),
        # Operation ids are the functions' names: what a generated client calls its methods.
        generate_unique_id_function=lambda route: route.name,
    )
    desk = console.desk

    @router.get("/disputes", summary="The dispute queue, oldest first, paged by cursor")
    def disputes(
        *,
        who: Caller,
        status: Literal["open", "overdue", "resolved", "all"] = "open",
        policy: str | None = None,
        min_minor: Annotated[
            int | None, Query(ge=0, le=MAX_MINOR, description="Least at stake.")
        ] = None,
        max_minor: Annotated[
            int | None, Query(ge=0, le=MAX_MINOR, description="Most at stake.")
        ] = None,
        after: Annotated[str | None, Query(description="`next_cursor` of the page before.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE_SIZE,
    ) -> DisputePage:
        require(who.role, Permission.READ_DISPUTES)
        filters = QueueFilter(status, policy or None, min_minor, max_minor)
        now = console.clock()
        with console.reading() as conn:
            try:
                page = queue_page(conn, console.policies, now, filters, after=after, limit=limit)
            except ValueError as exc:
                raise ConsoleError(f"bad cursor: {exc}") from None
        return DisputePage(now=now, disputes=page.disputes, next_cursor=page.next_cursor)

    @router.get("/disputes/{dispute_id}", summary="A dispute with its story and evidence")
    def dispute(who: Caller, dispute_id: str) -> DisputeDetail:
        require(who.role, Permission.READ_DISPUTES)
        now = console.clock()
        with console.reading() as conn:
            case = load_case(conn, dispute_id)
            queued = queue_row(conn, console.policies, now, case)
            story = read_story(conn, case.dispute.contract_id)
            evidence = evidence_of(conn, dispute_id)
            trail = audit.entries(conn, subject=dispute_id)
        proposals = [item for item in desk.proposals(status=None) if item.subject_id == dispute_id]
        return DisputeDetail(
            dispute=queued, contract=story, evidence=evidence, proposals=proposals, audit=trail
        )

    @router.get(
        "/disputes/{dispute_id}/preview", summary="The split a decision would book, unbooked"
    )
    def preview(
        who: Caller,
        dispute_id: str,
        outcome: DisputeOutcome = "partial_refund",
        amount_minor: Annotated[int | None, Query(gt=0, le=MAX_MINOR)] = None,
    ) -> DecisionPreview:
        require(who.role, Permission.READ_DISPUTES)
        amount = amount_minor if outcome == "partial_refund" else None
        return _preview(desk.preview(dispute_id, outcome, amount), desk.four_eyes_above_minor)

    @router.post("/disputes/{dispute_id}/decision", summary="Decide a dispute (dispute_team)")
    def decide_dispute(who: Caller, dispute_id: str, body: DisputeDecision) -> DecisionResult:
        amount = body.amount_minor if body.outcome == "partial_refund" else None
        done = desk.decide_dispute(
            who, dispute_id, body.outcome, amount, reason=body.reason, note=body.note
        )
        return _result(done, desk.four_eyes_above_minor)

    @router.get("/support", summary="Refund requests only support can decide now")
    def support(who: Caller) -> SupportQueue:
        require(who.role, Permission.READ_SUPPORT)
        now = console.clock()
        with console.reading() as conn:
            return SupportQueue(now=now, requests=support_queue(conn, console.policies, now))

    @router.post("/support/{request_id}/decision", summary="Approve or decline (support)")
    def decide_refund(who: Caller, request_id: str, body: RefundDecision) -> DecisionResult:
        done = desk.decide_refund(
            who,
            request_id,
            approve=body.decision == "approve",
            amount_minor=body.amount_minor,
            reason=body.reason,
            note=body.note,
        )
        return _result(done, desk.four_eyes_above_minor)

    @router.get("/proposals", summary="Decisions waiting for a second operator (OP-2)")
    def proposals(who: Caller) -> ProposalList:
        if not can(who.role, Permission.READ_SUPPORT):
            require(who.role, Permission.READ_DISPUTES)
        return ProposalList(proposals=desk.proposals())

    @router.post("/proposals/{proposal_id}/approve", summary="Approve another's proposal")
    def approve(who: Caller, proposal_id: str) -> DecisionResult:
        return _result(desk.approve(who, proposal_id), desk.four_eyes_above_minor)

    @router.post("/proposals/{proposal_id}/reject", summary="Reject a proposal")
    def reject(who: Caller, proposal_id: str, body: Review | None = None) -> DecisionResult:
        done = desk.reject(who, proposal_id, reason=body.reason if body else "")
        return _result(done, desk.four_eyes_above_minor)

    @router.get("/contracts/{contract_id}", summary="A contract's story")
    def contract(who: Caller, contract_id: str) -> ContractStory:
        require(who.role, Permission.READ_MONEY)
        with console.reading() as conn:
            return read_story(conn, contract_id)

    @router.get("/accounts/{account}", summary="An account's balances and statements")
    def account(
        who: Caller,
        account: str,
        since: Annotated[datetime | None, Query(description="ISO 8601; from this time on.")] = None,
        until: Annotated[datetime | None, Query(description="ISO 8601; before this time.")] = None,
    ) -> AccountStatement:
        require(who.role, Permission.READ_MONEY)
        with console.reading() as conn:
            currencies = currencies_of(conn, account, None, where=WHERE)
            return AccountStatement(
                account=account,
                balances=[account_balance(conn, account, each) for each in currencies],
                statements=[
                    statement(conn, account, each, since=since, until=until) for each in currencies
                ],
            )

    @router.get("/audit", summary="The operators' audit log, newest first")
    def audit_log(
        who: Caller,
        before: Annotated[
            int | None, Query(ge=1, le=MAX_SEQ, description="`next_before` of the page before.")
        ] = None,
    ) -> AuditPage:
        require(who.role, Permission.READ_AUDIT)
        with console.reading() as conn:
            entries = audit.entries(conn, before_seq=before, limit=AUDIT_PAGE)
        more = len(entries) == AUDIT_PAGE
        return AuditPage(entries=entries, next_before=entries[-1].seq if more else None)

    letters = console.dead_letters

    @router.get("/dead-letters", summary="The dead letters, newest first (admin)")
    def dead_letters(
        who: Caller,
        reason: Annotated[str | None, Query(description=f"One of {', '.join(REASONS)}.")] = None,
        before: Annotated[
            int | None,
            Query(ge=1, le=MAX_LETTER_ID, description="`next_before` of the page before."),
        ] = None,
    ) -> DeadLetterPage:
        require(who.role, Permission.MANAGE_DEAD_LETTERS)
        page = letters.listing(reason, before)
        return DeadLetterPage(
            dead_letters=[
                DeadLetterSummary.model_validate(each, from_attributes=True)
                for each in page.letters
            ],
            total=page.total,
            next_before=page.next_before,
        )

    @router.get("/dead-letters/{dead_letter_id}", summary="A dead letter with its body (admin)")
    def dead_letter(
        who: Caller, dead_letter_id: Annotated[int, Path(ge=1, le=MAX_LETTER_ID)]
    ) -> DeadLetterDetail:
        require(who.role, Permission.MANAGE_DEAD_LETTERS)
        found = letters.letter(dead_letter_id)
        return DeadLetterDetail.model_validate(found, from_attributes=True)

    @router.post("/dead-letters/retry", summary="Submit dead letters to the intake again (admin)")
    def retry_dead_letters(who: Caller, body: LetterChoice) -> RetryResult:
        require(who.role, Permission.MANAGE_DEAD_LETTERS)
        return RetryResult(letters=letters.retry(who, body.ids, body.confirm))

    @router.post("/dead-letters/purge", summary="Delete dead letters for good (admin)")
    def purge_dead_letters(who: Caller, body: LetterChoice) -> PurgeResult:
        require(who.role, Permission.MANAGE_DEAD_LETTERS)
        return PurgeResult(purged=letters.purge(who, body.ids, body.confirm))

    return router


def openapi_document(router: APIRouter) -> dict[str, Any]:
    """The API's OpenAPI document: the /api/v1 routes only, errors as Problem."""
    document = get_openapi(
        title="Recourse back-office API",
        version=VERSION,
        summary="Disputes, refunds and money of the Recourse engine, for the marketplace.",
        description=(
            "Bearer tokens come from `recourse tokens add OWNER --role ROLE`; every error is "
            "an RFC 9457 problem (`application/problem+json`). See docs/integration.md."
        ),
        routes=router.routes,
    )
    document.setdefault("components", {}).setdefault("schemas", {}).update(problem_schemas())
    return document


def install_api(app: FastAPI, console: Console) -> None:
    """Mount /api/v1 on the console's app, its problem answers and its OpenAPI document."""
    router = build_router(console)
    app.include_router(router)
    app.state.api_router = router
    install_problem_handlers(app)
    document = openapi_document(router)

    @app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return document
