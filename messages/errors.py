"""Errors raised while reading a message: every one names the field that is wrong."""

from __future__ import annotations


class MessageError(Exception):
    """Base of every error in `messages`."""


class MalformedMessage(MessageError):
    """The body is not a valid message of the contract.

    `problems` holds one `(field, reason)` pair per defect, the field as a dotted path
    (`data.amount_minor`), so the dead-letter reason tells the publisher what to fix.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{field}: {reason}" for field, reason in problems))

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.problems]


class PublishError(MessageError):
    """The broker did not confirm a message after every retry."""
