"""API tokens for the marketplace's back office: scoped by role, hashed at rest, revocable.

A token reads `rct_<token_id>_<secret>`. The id is public and finds the row; the secret is
256 random bits, shown once when the token is made, and only its SHA-256 is stored. A slow
password hash is not needed: the secret is random, not chosen by a person, so a stolen table
gives nothing to guess. The token acts as its `owner` with its role: decisions taken with it
name the owner in `decided_by` (OP-1), and four eyes (OP-2) compares owners' names.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy import insert as sql_insert

from console.accounts import Operator
from console.errors import NotFoundError
from console.roles import Role, parse_role
from console.tables import api_tokens

PREFIX = "rct"
ID_BYTES = 6  # 12 hex digits: unique enough among one marketplace's tokens, short to read
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiToken:
    token_id: str
    owner: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(conn: Connection, owner: str, role: Role, *, at: datetime) -> tuple[ApiToken, str]:
    """A new token for `owner`, and its text: the only time the secret is seen."""
    if not owner or len(owner) > 128 or not owner.isprintable() or " " in owner:
        raise ValueError("an owner's name is 1-128 printable characters without spaces")
    token_id = secrets.token_hex(ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    conn.execute(
        sql_insert(api_tokens).values(
            token_id=token_id,
            owner=owner,
            role=role.value,
            secret_sha256=_digest(secret),
            created_at=at,
        )
    )
    return ApiToken(token_id, owner, role, at, None), f"{PREFIX}_{token_id}_{secret}"


def list_tokens(conn: Connection) -> list[ApiToken]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.token_id))
    return [
        ApiToken(row.token_id, row.owner, parse_role(row.role), row.created_at, row.revoked_at)
        for row in rows
    ]


def revoke_token(conn: Connection, token_id: str, *, at: datetime) -> ApiToken:
    """Revoke `token_id` (its id, or the whole token text); revoking twice keeps the first."""
    token_id = _id_of(token_id) or token_id
    conn.execute(
        update(api_tokens)
        .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    for token in list_tokens(conn):
        if token.token_id == token_id:
            return token
    raise NotFoundError(f"no API token {token_id!r}")


def _id_of(text: str) -> str | None:
    prefix, _, rest = text.partition("_")
    token_id, _, secret = rest.partition("_")
    return token_id if prefix == PREFIX and token_id and secret else None


def operator_of_token(conn: Connection, text: str) -> Operator | None:
    """The operator a token acts as; None when it is malformed, unknown or revoked."""
    token_id = _id_of(text)
    if token_id is None:
        return None
    secret = text.split("_", 2)[2]
    row = conn.execute(
        select(api_tokens.c.owner, api_tokens.c.role, api_tokens.c.secret_sha256).where(
            api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None)
        )
    ).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    return Operator(row.owner, parse_role(row.role))
