"""The JSON API's errors: RFC 9457 problem details (`application/problem+json`).

Every refusal of `/api/` answers `{"type", "title", "status", "detail", "errors"}`: `title` is
the status's phrase, `detail` the sentence for a person, `errors` the fields a request got
wrong (422) and null otherwise. The pages keep their HTML error page.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

MEDIA_TYPE = "application/problem+json"
API_PATHS = "/api/"


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="Where in the request: path, query or body, then")
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(default="about:blank", description="Always about:blank: see `status`.")
    title: str = Field(description="The HTTP status's phrase, e.g. Forbidden.")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="What went wrong, in a sentence for a person.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="The request's invalid fields (422); null otherwise."
    )


DESCRIPTIONS = {
    400: "The request is not usable (a bad cursor, an unknown account name, a dead-letter "
    "action not confirmed).",
    401: "No valid credentials: a missing, unknown or revoked token, or no session.",
    403: "The role may not do this, a cookie session's write lacks its CSRF token, or OP-2 "
    "refuses the proposer's own approval.",
    404: "No such dispute, contract, refund request, proposal or dead letter.",
    409: "The subject is not in a state that takes this decision.",
    422: "A parameter or the body breaks the schema.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entries of these statuses, each a Problem."""
    return {
        status: {
            "description": DESCRIPTIONS[status],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors)
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="recourse"', **(headers or {})}
    return JSONResponse(
        body.model_dump(mode="json"), status_code=status, media_type=MEDIA_TYPE, headers=headers
    )


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PATHS)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not is_api(request):
        return await request_validation_exception_handler(request, exc)
    errors = [
        FieldProblem(loc=list(item["loc"]), msg=str(item["msg"]), type=str(item["type"]))
        for item in jsonable_encoder(exc.errors())
    ]
    return problem_response(422, "the request breaks the API's schema", errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not is_api(request):
        return await http_exception_handler(request, exc)
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Unknown paths, wrong methods and invalid requests under /api/ answer as problems."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)


def problem_schemas() -> dict[str, Any]:
    """Problem and FieldProblem as OpenAPI component schemas."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {"Problem": schema, **nested}
