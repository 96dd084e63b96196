"""Roles and what each may do; every page and action names the permission it needs."""

from __future__ import annotations

from enum import StrEnum

from console.errors import Forbidden


class Role(StrEnum):
    SUPPORT = "support"
    DISPUTE_TEAM = "dispute_team"
    FINANCE = "finance"  # reads everything, acts on nothing
    ADMIN = "admin"


class Permission(StrEnum):
    READ_DISPUTES = "read_disputes"
    DECIDE_DISPUTES = "decide_disputes"
    READ_SUPPORT = "read_support"
    DECIDE_REFUNDS = "decide_refunds"
    READ_MONEY = "read_money"  # contracts' stories and account statements
    READ_AUDIT = "read_audit"
    MANAGE_DEAD_LETTERS = "manage_dead_letters"  # view, retry and purge dead letters


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.SUPPORT: frozenset(
        {
            Permission.READ_DISPUTES,
            Permission.READ_SUPPORT,
            Permission.DECIDE_REFUNDS,
            Permission.READ_MONEY,
        }
    ),
    Role.DISPUTE_TEAM: frozenset(
        {Permission.READ_DISPUTES, Permission.DECIDE_DISPUTES, Permission.READ_MONEY}
    ),
    Role.FINANCE: frozenset(
        {
            Permission.READ_DISPUTES,
            Permission.READ_SUPPORT,
            Permission.READ_MONEY,
            Permission.READ_AUDIT,
        }
    ),
    # Administrators manage operators and dead letters and read everything; deciding stays
    # with the teams.
    Role.ADMIN: frozenset(
        {
            Permission.READ_DISPUTES,
            Permission.READ_SUPPORT,
            Permission.READ_MONEY,
            Permission.READ_AUDIT,
            Permission.MANAGE_DEAD_LETTERS,
        }
    ),
}


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        names = ", ".join(role.value for role in Role)
        raise ValueError(f"unknown role {text!r}; roles are {names}") from None


def can(role: Role, permission: Permission) -> bool:
    return permission in GRANTS[role]


def require(role: Role, permission: Permission) -> None:
    if not can(role, permission):
        raise Forbidden(f"the {role.value} role may not {permission.value.replace('_', ' ')}")
