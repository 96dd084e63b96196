"""Which function handles which inbound type, and which fires which kind of deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from policy.context import HandlerContext
    from policy.outcomes import Outcome

Handler = Callable[["HandlerContext", Any], "Outcome"]
DeadlineHandler = Callable[["HandlerContext", str], "Outcome"]
"""Fires one deadline: gets the context and the deadline's subject id."""

HANDLERS: dict[str, Handler] = {}
DEADLINE_HANDLERS: dict[str, DeadlineHandler] = {}

F = TypeVar("F", bound=Callable[..., Any])


def handles(event_type: str) -> Callable[[F], F]:
    """Register the decorated function as the handler of `event_type`."""

    def register(function: F) -> F:
        if event_type in HANDLERS:
            raise RuntimeError(f"two handlers for {event_type}")
        HANDLERS[event_type] = function
        return function

    return register


def fires(deadline_kind: str) -> Callable[[F], F]:
    """Register the decorated function as what a due deadline of `deadline_kind` does."""

    def register(function: F) -> F:
        if deadline_kind in DEADLINE_HANDLERS:
            raise RuntimeError(f"two handlers for deadline kind {deadline_kind}")
        DEADLINE_HANDLERS[deadline_kind] = function
        return function

    return register
