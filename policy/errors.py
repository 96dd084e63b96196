"""Errors of the policy layer. A business refusal is not among them: it is a `Rejection`."""

from __future__ import annotations


class PolicyError(Exception):
    """Base of every error in `policy`."""


class PolicyFileError(PolicyError):
    """A preset or policy file is invalid; the message names the value at fault."""


class UnknownSubject(PolicyError):
    """The event names a subject the engine has not seen yet (a release before its funding).

    Workers retry it for a bounded time, since the missing event may still be on its way; the
    replay, which has no later, records it as a rejection with reason `unknown_subject`.
    """

    def __init__(self, kind: str, subject_id: str) -> None:
        self.kind = kind
        self.subject_id = subject_id
        super().__init__(f"unknown {kind} {subject_id!r}")


class IdempotencyConflict(PolicyError):
    """An event id arrived again with another body: dead-lettered, never applied."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event_id {event_id!r} was already applied with a different body")
