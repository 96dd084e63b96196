"""The failure policy's verdicts: what is retried, for how long, and what is dead-lettered why."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, ProgrammingError

from messages import MalformedMessage
from policy.errors import IdempotencyConflict, UnknownSubject
from workers.errors import is_contention, is_outage, sqlstate
from workers.middleware.failure_rules import (
    CONTENTION,
    DATABASE_UNAVAILABLE,
    HANDLER_ERROR,
    IDEMPOTENCY_CONFLICT,
    MALFORMED,
    UNKNOWN_SUBJECT,
    RetryPolicy,
    backoff_ms,
    describe,
    judge_failure,
)

POLICY = RetryPolicy(
    min_backoff_ms=500,
    max_backoff_ms=60_000,
    unknown_subject_budget_ms=600_000,
    contention_max_retries=20,
    error_max_retries=5,
)


class PgError(Exception):
    """Stands in for a psycopg error: what the rules read is its `sqlstate`."""

    def __init__(self, state: str) -> None:
        super().__init__(f"sqlstate {state}")
        self.sqlstate = state


def pg(kind: type[Any], state: str) -> Any:
    return kind("UPDATE contracts ...", {}, PgError(state))


def judge(exc: BaseException, retries: int = 0, failing_for_ms: int = 0) -> Any:
    return judge_failure(exc, retries=retries, failing_for_ms=failing_for_ms, policy=POLICY)


def test_a_malformed_message_is_dead_lettered_at_once_with_its_validation_error() -> None:
    verdict = judge(MalformedMessage([("data.amount_minor", "must be an integer")]))
    assert (verdict.action, verdict.reason) == ("dead_letter", MALFORMED)
    assert verdict.detail == "data.amount_minor: must be an integer"


def test_an_idempotency_conflict_is_dead_lettered_at_once() -> None:
    verdict = judge(IdempotencyConflict("evt-1"))
    assert (verdict.action, verdict.reason) == ("dead_letter", IDEMPOTENCY_CONFLICT)
    assert "evt-1" in verdict.detail


def test_an_unknown_subject_is_retried_with_growing_delays_within_its_budget() -> None:
    delays = [
        judge(UnknownSubject("contract", "c1"), retries, failing_for_ms=1000 * retries).delay_ms
        for retries in range(5)
    ]
    assert [judge(UnknownSubject("contract", "c1")).action] == ["retry"]
    assert delays == [500, 1000, 2000, 4000, 8000]


def test_an_unknown_subject_is_dead_lettered_once_its_budget_is_spent() -> None:
    verdict = judge(UnknownSubject("milestone", "m1"), retries=14, failing_for_ms=600_000)
    assert (verdict.action, verdict.reason) == ("dead_letter", UNKNOWN_SUBJECT)
    assert verdict.detail == "UnknownSubject: unknown milestone 'm1'"


def test_the_last_unknown_subject_wait_ends_near_the_end_of_the_budget() -> None:
    verdict = judge(UnknownSubject("milestone", "m1"), retries=12, failing_for_ms=599_000)
    assert verdict.action == "retry"
    assert verdict.delay_ms == 1000


def test_the_default_unknown_subject_budget_is_about_ten_minutes_of_short_delays() -> None:
    elapsed = retries = 0
    while (verdict := judge(UnknownSubject("contract", "c"), retries, elapsed)).action == "retry":
        assert verdict.delay_ms <= POLICY.max_backoff_ms
        elapsed += verdict.delay_ms
        retries += 1
    assert 600_000 <= elapsed < 600_000 + POLICY.max_backoff_ms
    assert verdict.reason == UNKNOWN_SUBJECT


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT 1", {}, Exception("connection refused")),
        InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        pg(OperationalError, "57P01"),
        pg(OperationalError, "08006"),
    ],
    ids=["refused", "closed", "admin-shutdown", "connection-failure"],
)
def test_a_database_outage_is_retried_without_end_with_a_capped_delay(exc: Exception) -> None:
    verdict = judge(exc, retries=10_000, failing_for_ms=86_400_000)
    assert (verdict.action, verdict.reason) == ("retry", DATABASE_UNAVAILABLE)
    assert verdict.delay_ms == POLICY.max_backoff_ms


def test_an_invalidated_connection_counts_as_an_outage() -> None:
    exc = ProgrammingError("SELECT 1", {}, Exception("server closed the connection"))
    exc.connection_invalidated = True
    assert is_outage(exc)
    assert judge(exc).reason == DATABASE_UNAVAILABLE


@pytest.mark.parametrize(
    "exc",
    [
        pg(OperationalError, "40001"),
        pg(OperationalError, "40P01"),
        pg(IntegrityError, "23505"),
        IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed: inbox")),
    ],
    ids=["serialization", "deadlock", "racing-duplicate-pg", "racing-duplicate-sqlite"],
)
def test_a_collision_with_another_transaction_is_retried_not_dead_lettered(
    exc: Exception,
) -> None:
    assert is_contention(exc)
    verdict = judge(exc, retries=3)
    assert (verdict.action, verdict.reason) == ("retry", CONTENTION)


def test_a_collision_that_never_clears_is_dead_lettered_in_the_end() -> None:
    verdict = judge(pg(OperationalError, "40001"), retries=POLICY.contention_max_retries)
    assert (verdict.action, verdict.reason) == ("dead_letter", CONTENTION)


def test_a_check_constraint_failure_is_a_bug_not_a_collision() -> None:
    exc = pg(IntegrityError, "23514")
    assert not is_contention(exc)
    assert not is_outage(exc)
    assert judge(exc).reason == HANDLER_ERROR


def test_an_unexpected_error_is_retried_a_few_times_then_dead_lettered() -> None:
    exc = KeyError("no handler")
    verdicts = [judge(exc, retries) for retries in range(POLICY.error_max_retries + 1)]
    assert [verdict.action for verdict in verdicts] == ["retry"] * 5 + ["dead_letter"]
    assert verdicts[-1].reason == HANDLER_ERROR
    assert verdicts[-1].detail == "KeyError: 'no handler'"


def test_backoff_doubles_from_the_minimum_and_stops_at_the_cap() -> None:
    assert [backoff_ms(retries, POLICY) for retries in (0, 1, 2, 6, 7, 100)] == [
        500,
        1000,
        2000,
        32_000,
        60_000,
        60_000,
    ]


def test_a_policy_whose_minimum_backoff_exceeds_its_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="backoffs"):
        RetryPolicy(min_backoff_ms=2000, max_backoff_ms=1000)


def test_describe_keeps_the_first_line_of_the_message() -> None:
    assert describe(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert describe(RuntimeError()) == "RuntimeError"


def test_sqlstate_is_read_from_the_driver_error() -> None:
    assert sqlstate(pg(OperationalError, "40001")) == "40001"
    assert sqlstate(OperationalError("SELECT 1", {}, Exception("no state"))) is None
