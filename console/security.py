"""Sessions, CSRF tokens and the signed-in operator of a request.

The session lives in a signed cookie (Starlette's SessionMiddleware: itsdangerous, HttpOnly,
SameSite=Lax), and holds the operator's name, role, where the identity came from, a CSRF
token and when the operator was last seen. A session idle longer than the timeout is
cleared; a local account that was disabled or deleted since sign-in ends its sessions.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from sqlalchemy import Engine

from console.accounts import Operator, find_operator
from console.errors import BadCsrfToken, NotSignedIn
from console.roles import parse_role

LOCAL = "local"
OIDC = "oidc"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def sign_in(session: MutableMapping[str, Any], operator: Operator, source: str) -> None:
    # A new session on every sign-in: a token planted before sign-in is worth nothing after.
    session.clear()
    session.update(
        operator=operator.name,
        role=operator.role.value,
        source=source,
        csrf=secrets.token_urlsafe(32),
        seen=int(time.time()),
    )


def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf(session: MutableMapping[str, Any], given: str | None) -> None:
    expected = session.get("csrf")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
        raise BadCsrfToken("the form's security token is missing or stale: reload the page")


def current_operator(
    session: MutableMapping[str, Any], engine: Engine, *, idle_seconds: int, now: float
) -> Operator:
    name = session.get("operator")
    if not isinstance(name, str):
        raise NotSignedIn("sign in first")
    seen = session.get("seen")
    if not isinstance(seen, int) or now - seen > idle_seconds:
        session.clear()
        raise NotSignedIn("the session was idle too long: sign in again")
    if session.get("source") == LOCAL:
        with engine.connect() as conn:
            operator = find_operator(conn, name)
        if operator is None:
            session.clear()
            raise NotSignedIn("this account no longer exists or is disabled")
    else:
        operator = Operator(name, parse_role(str(session.get("role"))))
    session["seen"] = int(now)
    session["role"] = operator.role.value
    return operator
