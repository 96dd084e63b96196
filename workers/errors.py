"""Errors of the runtime, and how the errors of the libraries below it are told apart.

A worker's failure policy needs three answers about any exception: is the store or the broker
away (retry until it is back), did two transactions collide (retry at once, the next attempt
sees the other's commit), or is it something else. The database answers with a SQLSTATE on
PostgreSQL and with an exception class on SQLite; these helpers read both.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError


class WorkerError(Exception):
    """Base of every error in `workers`."""


class ConfigurationError(WorkerError):
    """The settings ask for something the runtime cannot do (a DLQ without RabbitMQ)."""


class NotificationPublishError(WorkerError):
    """The broker did not confirm a notification; the relay leaves its row unsent."""


class DeadLetterError(WorkerError):
    """A dead letter could not be read or sent back to its queue."""


SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
UNIQUE_VIOLATION = "23505"
LOCK_NOT_AVAILABLE = "55P03"

_CONTENTION_STATES = frozenset(
    {SERIALIZATION_FAILURE, DEADLOCK_DETECTED, UNIQUE_VIOLATION, LOCK_NOT_AVAILABLE}
)
_OUTAGE_STATE_CLASSES = ("08", "57P", "53")
"""Connection exceptions, operator intervention (admin shutdown, cannot connect now) and
insufficient resources: the server is away or full, not the statement wrong."""


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg), or None when the driver gives none."""
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    state = getattr(original, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_contention(exc: BaseException) -> bool:
    """Two transactions collided: a serialization failure, a deadlock, a lock wait refused,
    or a unique key taken by a racing duplicate. The same work succeeds when tried again."""
    if not isinstance(exc, DBAPIError):
        return False
    state = sqlstate(exc)
    if state is not None:
        return state in _CONTENTION_STATES
    # SQLite gives no SQLSTATE; a racing duplicate there is a plain UNIQUE failure.
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)


def is_outage(exc: BaseException) -> bool:
    """The database cannot be reached or refuses work for now: retry until it comes back."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    state = sqlstate(exc)
    if state is None:
        # No SQLSTATE: the driver could not talk to a server at all (refused connection,
        # dropped socket), or SQLite reports a locked or unreadable file.
        return True
    return state.startswith(_OUTAGE_STATE_CLASSES)
