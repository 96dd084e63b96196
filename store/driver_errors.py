"""A driver's error as the `sqlalchemy.exc` error `Connection.execute` would raise for it.

Statements run on the driver's cursor (`store.prepared`, `store.pipelining`) raise what
SQLAlchemy would have raised, so the callers that catch `IntegrityError`, and the workers'
failure rules that tell an outage from a bad event by class, behave the same either way.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection, exc


def translated(
    conn: Connection, cursor: Any, sql: str, params: Any, error: Exception
) -> exc.StatementError:
    """The error `Connection.execute` would raise for `error`; a connection whose server went
    away is invalidated first, with the pool's older ones, so the pool opens new ones."""
    dbapi_connection = conn.connection.dbapi_connection
    disconnected = conn.dialect.is_disconnect(cast(Any, error), dbapi_connection, cursor)
    result = exc.DBAPIError.instance(
        sql,
        params,
        error,
        conn.dialect.loaded_dbapi.Error,
        connection_invalidated=disconnected,
        dialect=conn.dialect,
    )
    if disconnected and not conn.invalidated:
        # As `Connection.execute` does on a disconnect: every connection the pool opened before
        # now is stale too (a restart ended all their sessions), so the pool replaces each at
        # its next checkout instead of lending it out to fail once more.
        conn.engine.pool._invalidate(conn.connection, error)
        conn.invalidate(error)
    return result
