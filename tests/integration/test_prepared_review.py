"""What the prepared statements and fixed-name savepoints must keep from `Connection.execute`
and `begin_nested` on the real PostgreSQL, found in review."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from store.prepared import Prepared
from store.savepoints import savepoint
from workers.errors import is_outage

pytestmark = pytest.mark.postgres

BACKEND_PID = Prepared(text("SELECT pg_backend_pid()"))
ONE = Prepared(text("SELECT 1"))


def _terminate_backend_of(engine: Engine, conn: Connection) -> None:
    """Make the server drop `conn`, as a restart or a failover would."""
    ((pid,),) = BACKEND_PID.rows(conn, {})
    with engine.connect() as admin:
        # The timeout makes the call wait until the backend is gone, so the next statement on
        # `conn` finds the connection closed rather than racing the signal.
        admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        admin.rollback()


def test_a_server_lost_inside_a_savepoint_is_raised_as_an_outage(pg_engine: Engine) -> None:
    # Book.post runs every posting in savepoint(conn, "recourse_book"); the workers' failure
    # policy retries an outage until the database is back, but dead-letters any other error
    # after ERROR_MAX_RETRIES, so the error that leaves the block must still be the outage.
    with (
        pytest.raises(DBAPIError) as raised,
        pg_engine.begin() as conn,
        savepoint(conn, "review_lost_server"),
    ):
        _terminate_backend_of(pg_engine, conn)
        ONE.rows(conn, {})
    assert raised.value.connection_invalidated
    assert is_outage(raised.value)
    # The pool hands out a working connection afterwards.
    with pg_engine.connect() as conn:
        assert ONE.rows(conn, {}) == [(1,)]
        conn.rollback()


def test_begin_nested_raises_the_same_loss_as_an_outage(pg_engine: Engine) -> None:
    # What the book's savepoint raised before it took a fixed name (and what it should raise).
    with pytest.raises(DBAPIError) as raised, pg_engine.begin() as conn, conn.begin_nested():
        _terminate_backend_of(pg_engine, conn)
        ONE.rows(conn, {})
    assert raised.value.connection_invalidated
    assert is_outage(raised.value)


def test_a_server_lost_under_a_prepared_statement_retires_the_whole_pool(
    pg_engine: Engine,
) -> None:
    # A restart ends every session at once: as with Connection.execute, the first statement to
    # find out invalidates the pool's older connections too, so no later checkout fails again.
    held = [pg_engine.connect() for _ in range(3)]
    for conn in held:
        ONE.rows(conn, {})
    pids = [BACKEND_PID.rows(conn, {})[0][0] for conn in held]
    for conn in held:
        conn.close()
    admin = create_engine(pg_engine.url, poolclass=NullPool)
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
        conn.rollback()
    admin.dispose()
    with pytest.raises(DBAPIError) as raised, pg_engine.connect() as conn:
        ONE.rows(conn, {})
    assert is_outage(raised.value)
    for _ in range(3):
        with pg_engine.connect() as conn:
            assert ONE.rows(conn, {}) == [(1,)]
            conn.rollback()
