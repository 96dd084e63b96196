"""Local operator accounts: Argon2id password hashes, and sign-in throttled per name.

A name that failed `limit` times within the window is refused without looking at the
password, so guessing costs an attacker the window, not a hash per try; the check does the
Argon2 work even for an unknown name, so a wrong name and a wrong password take alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, func, insert, select, update

from console.errors import Conflict, Throttled
from console.roles import Role, parse_role
from console.tables import operators, signin_failures

_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("no operator has this password")
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    role: Role


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def add_operator(
    conn: Connection, name: str, role: Role, password: str | None, *, at: datetime
) -> Operator:
    """A new operator; `password` None makes an account that signs in through OIDC only."""
    if not name or len(name) > 128 or not name.isprintable() or " " in name:
        raise ValueError("a name is 1-128 printable characters without spaces")
    if find_operator(conn, name) is not None:
        raise Conflict(f"operator {name!r} exists already")
    conn.execute(
        insert(operators).values(
            name=name,
            role=role.value,
            password_hash=hash_password(password) if password is not None else None,
            created_at=at,
        )
    )
    return Operator(name, role)


def find_operator(conn: Connection, name: str) -> Operator | None:
    row = conn.execute(
        select(operators.c.name, operators.c.role).where(
            operators.c.name == name, operators.c.disabled_at.is_(None)
        )
    ).first()
    return Operator(row.name, parse_role(row.role)) if row is not None else None


def set_role(conn: Connection, name: str, role: Role) -> None:
    conn.execute(update(operators).where(operators.c.name == name).values(role=role.value))


def check_throttle(
    conn: Connection, name: str, *, at: datetime, limit: int, window: timedelta
) -> None:
    failures = conn.execute(
        select(func.count())
        .select_from(signin_failures)
        .where(signin_failures.c.name == name, signin_failures.c.at > at - window)
    ).scalar_one()
    if failures >= limit:
        minutes = int(window.total_seconds() // 60)
        raise Throttled(
            f"too many failed sign-ins for {name!r}: wait {minutes} minutes and try again"
        )


def authenticate(
    conn: Connection,
    name: str,
    password: str,
    *,
    at: datetime,
    limit: int = 5,
    window: timedelta = timedelta(minutes=15),
) -> Operator | None:
    """The operator when `password` is theirs; None (and one failure recorded) otherwise.

    Raises `Throttled` when the name has failed too often lately.
    """
    check_throttle(conn, name, at=at, limit=limit, window=window)
    row = conn.execute(
        select(operators.c.role, operators.c.password_hash).where(
            operators.c.name == name, operators.c.disabled_at.is_(None)
        )
    ).first()
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
        ok = row is not None and row.password_hash is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None:
        conn.execute(insert(signin_failures).values(name=name, at=at))
        return None
    conn.execute(delete(signin_failures).where(signin_failures.c.name == name))
    if _HASHER.check_needs_rehash(row.password_hash):
        conn.execute(
            update(operators)
            .where(operators.c.name == name)
            .values(password_hash=_HASHER.hash(password))
        )
    return Operator(name, parse_role(row.role))
