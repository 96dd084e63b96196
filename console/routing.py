"""What every route module of the console needs from the app: the signed-in operator with a
permission checked, the same with the CSRF token checked (an action), and a rendered page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse

from console.accounts import Operator
from console.roles import Permission


@dataclass(frozen=True, slots=True)
class Guards:
    operator: Callable[[Request, Permission], Operator]
    """The signed-in operator, who must hold the permission (else NotSignedIn, Forbidden)."""
    acting: Callable[[Request, Permission, str | None], Operator]
    """`operator`, and the form's CSRF token (or the X-CSRF-Token header) must match."""
    page: Callable[..., HTMLResponse]
    """page(request, template, operator, **context): a page with the layout's context."""
