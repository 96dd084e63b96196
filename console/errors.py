"""The console's failures: each maps to one HTTP status and a sentence for the operator."""

from __future__ import annotations


class ConsoleError(Exception):
    """A refusal the operator can read; `status` is the HTTP status it answers with."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotSignedIn(ConsoleError):
    status = 401


class Forbidden(ConsoleError):
    status = 403


class NotFoundError(ConsoleError):
    status = 404


class Conflict(ConsoleError):
    """The subject is not in a state that takes the action (decided, not pending, ...)."""

    status = 409


class Throttled(ConsoleError):
    status = 429


class BadCsrfToken(Forbidden):
    pass


class OperatorMissing(ConsoleError):
    """OP-1: a decision without an operator is refused."""

    status = 403
