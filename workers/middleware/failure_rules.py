"""What to do with a message whose actor raised: retry it later, or dead-letter it with a reason.

Pure: the exception, how many times the message was retried and how long it has been failing
go in, a verdict comes out. The `FailurePolicy` middleware applies it.

- malformed message (`MalformedMessage`): dead-letter at once, `malformed`, with the
  validation error;
- same `event_id`, other body (`IdempotencyConflict`): dead-letter at once,
  `idempotency_conflict`;
- subject not seen yet (`UnknownSubject`): retry with backoff for `unknown_subject_budget_ms`,
  then dead-letter, `unknown_subject`;
- database away (connection refused or lost, admin shutdown): retry for ever, backoff capped;
- collision with another transaction (serialization failure, deadlock, a racing duplicate's
  unique key): retry, up to `contention_max_retries`, then `contention`;
- anything else (a bug): retry `error_max_retries` times, then `handler_error`.

Every delay is capped by `max_backoff_ms`: a delayed message is held unacked by the worker, and
RabbitMQ's consumer timeout would requeue it if a delay came near that timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from messages import MalformedMessage
from policy.errors import IdempotencyConflict, UnknownSubject
from workers.errors import is_contention, is_outage

Action = Literal["retry", "dead_letter"]

MALFORMED = "malformed"
IDEMPOTENCY_CONFLICT = "idempotency_conflict"
UNKNOWN_SUBJECT = "unknown_subject"
DATABASE_UNAVAILABLE = "database_unavailable"
CONTENTION = "contention"
HANDLER_ERROR = "handler_error"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    min_backoff_ms: int = 500
    max_backoff_ms: int = 60_000
    unknown_subject_budget_ms: int = 600_000
    contention_max_retries: int = 20
    error_max_retries: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.min_backoff_ms <= self.max_backoff_ms:
            raise ValueError("backoffs must satisfy 0 < min_backoff_ms <= max_backoff_ms")


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    reason: str
    detail: str
    delay_ms: int = 0


def backoff_ms(retries: int, policy: RetryPolicy) -> int:
    """Exponential: min, 2 x min, 4 x min... capped at `max_backoff_ms`."""
    return min(policy.min_backoff_ms << min(retries, 32), policy.max_backoff_ms)


def judge_failure(
    exc: BaseException, *, retries: int, failing_for_ms: int, policy: RetryPolicy
) -> Verdict:
    """The verdict on a message that raised `exc` after `retries` earlier retries, failing
    since `failing_for_ms` milliseconds (0 on its first failure)."""
    detail = describe(exc)
    if isinstance(exc, MalformedMessage):
        return Verdict("dead_letter", MALFORMED, str(exc))
    if isinstance(exc, IdempotencyConflict):
        return Verdict("dead_letter", IDEMPOTENCY_CONFLICT, str(exc))
    if isinstance(exc, UnknownSubject):
        remaining = policy.unknown_subject_budget_ms - failing_for_ms
        if remaining <= 0:
            return Verdict("dead_letter", UNKNOWN_SUBJECT, detail)
        # The last wait ends near the end of the budget, so the final attempt comes on time.
        delay = min(backoff_ms(retries, policy), max(remaining, policy.min_backoff_ms))
        return Verdict("retry", UNKNOWN_SUBJECT, detail, delay)
    if is_contention(exc):
        if retries >= policy.contention_max_retries:
            return Verdict("dead_letter", CONTENTION, detail)
        return Verdict("retry", CONTENTION, detail, backoff_ms(retries, policy))
    if is_outage(exc):
        return Verdict("retry", DATABASE_UNAVAILABLE, detail, backoff_ms(retries, policy))
    if retries >= policy.error_max_retries:
        return Verdict("dead_letter", HANDLER_ERROR, detail)
    return Verdict("retry", HANDLER_ERROR, detail, backoff_ms(retries, policy))


def describe(exc: BaseException) -> str:
    """`Type: message`, first line only: enough for a log line or a dead letter."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
