"""Writes nobody reads, sent without waiting for their answer: PostgreSQL's pipeline mode.

On PostgreSQL every statement is a round trip: the worker sends it, waits for the answer, then
goes on. A worker's event ran about fifteen, and on a loaded machine each costs the client far
more CPU than the statement costs the server (docs/performance.md). Most of an event's writes
(state rows saved, transfers, balance moves, notifications into the outbox) answer nothing that
anybody reads. Inside `deferred_writes`, `Prepared.write` and `Prepared.run_many` queue such a
statement in psycopg's pipeline: it travels with the next statement that needs an answer (a
read, a row count, the end of the block), in the same round trip, and runs in the order sent.

What that changes for a caller: a deferred write that fails (a unique key, a check) raises at
that later statement, or when the block ends, not where it was written. The error is the same
`sqlalchemy.exc` class, and PostgreSQL has lost the transaction from the first failure
whichever statement reports it. So `deferred_writes` is for a block whose every failure undoes
the whole transaction (the workers' unit of work), and a savepoint (`store.savepoints`) waits
for its block's writes before the block ends, so a failure inside still rolls back to it.

A statement run through `Connection.execute` first has every queued write answered and leaves
pipeline mode (`settle_before_execute`, installed on PostgreSQL engines by
`workers.database.make_engine`): SQLAlchemy reads the cursor's description as soon as the
statement has run, which pipeline mode leaves empty until the answer comes. Outside
`deferred_writes` (SQLite, the relay, the scheduler, the operator's commands) nothing is
deferred.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from psycopg import Pipeline
from sqlalchemy import Connection, exc

from store.driver_errors import translated

# Keys in the pooled connection's `info`, which lives as long as its driver connection.
_OPEN = "recourse.pipeline"  # (context manager, pipeline) while pipeline mode is on
_DEFERRING = "recourse.deferring"  # set inside deferred_writes
# What a failure that surfaces when queued writes are answered is reported against.
_QUEUED = "-- writes queued in the pipeline"


def _supported(conn: Connection) -> bool:
    return conn.dialect.driver == "psycopg" and Pipeline.is_supported()


@contextmanager
def deferred_writes(conn: Connection) -> Iterator[None]:
    """Queue `Prepared.write` and `run_many` statements on `conn` until something needs an
    answer; on leaving, every queued write is answered (the first failure raises here). Does
    nothing on a driver without pipeline mode."""
    if not _supported(conn):
        yield
        return
    info = conn.connection.info
    info[_DEFERRING] = True
    try:
        # The pipeline opens at the first write: psycopg waits for BEGIN's answer in pipeline
        # mode too, so opening it earlier would save nothing.
        yield
        settle(conn)
    except BaseException:
        abandon(conn)
        raise
    finally:
        info.pop(_DEFERRING, None)


def pipeline_for_write(conn: Connection) -> Pipeline | None:
    """The pipeline a write on `conn` joins (opened now inside `deferred_writes`), or None when
    writes run at once."""
    found = open_pipeline(conn)
    if found is not None or conn.dialect.driver != "psycopg" or conn.invalidated:
        return found
    info = conn.connection.info
    return _open(conn, info) if info.get(_DEFERRING) else None


def open_pipeline(conn: Connection) -> Pipeline | None:
    """The pipeline open on `conn`, if any."""
    if conn.dialect.driver != "psycopg" or conn.invalidated:
        return None
    found = conn.connection.info.get(_OPEN)
    return None if found is None else found[1]


def sync(conn: Connection) -> None:
    """Have every write queued on `conn` answered now; the first that failed raises here."""
    pipeline = open_pipeline(conn)
    if pipeline is None:
        return
    try:
        pipeline.sync()
    except conn.dialect.loaded_dbapi.Error as error:
        raise failure(conn, None, _QUEUED, None, error) from error


def settle(conn: Connection) -> None:
    """Have every queued write answered and leave pipeline mode; the first failure raises."""
    manager = _take_open(conn)
    if manager is None:
        return
    try:
        manager.__exit__(None, None, None)
    except conn.dialect.loaded_dbapi.Error as error:
        raise translated(conn, None, _QUEUED, None, error) from error


def failure(
    conn: Connection, cursor: Any, sql: str, params: Any, error: Exception
) -> exc.StatementError:
    """The `sqlalchemy.exc` error to raise for a driver's `error` on `conn`, pipeline mode
    left first. A failed pipeline still owes an "aborted" answer for every statement queued
    after the failure, and would fail the next statement (a savepoint's rollback, say) with
    PipelineAborted: an OperationalError with no SQL state, which the workers would take for
    an outage, retried for ever, in place of this error."""
    abandon(conn)
    return translated(conn, cursor, sql, params, error)


def abandon(conn: Connection) -> None:
    """Leave pipeline mode after a failure, without raising: the transaction (or the savepoint's
    block) is being undone, so what the queued writes answer no longer matters, and a statement
    sent while a failed pipeline waits for its sync would fail too."""
    manager = _take_open(conn)
    if manager is None:
        return
    # The failure being handled is the one that matters; this one would be its echo.
    with suppress(Exception):
        manager.__exit__(None, None, None)


def settle_before_execute(conn: Connection, *_args: Any) -> None:
    """`before_cursor_execute` listener: a statement through `Connection.execute` runs outside
    pipeline mode, after every queued write was answered."""
    if not conn.invalidated and _OPEN in conn.connection.info:
        settle(conn)


def _take_open(conn: Connection) -> AbstractContextManager[Pipeline] | None:
    """The context manager of the pipeline open on `conn`, forgotten by the connection: the
    caller leaves pipeline mode with it."""
    if conn.dialect.driver != "psycopg" or conn.invalidated:
        return None
    found = conn.connection.info.pop(_OPEN, None)
    return None if found is None else found[0]


def _open(conn: Connection, info: dict[Any, Any]) -> Pipeline:
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:
        raise RuntimeError("the connection's driver connection is closed")
    manager: AbstractContextManager[Pipeline] = dbapi_connection.pipeline()
    pipeline = manager.__enter__()
    info[_OPEN] = (manager, pipeline)
    return pipeline
