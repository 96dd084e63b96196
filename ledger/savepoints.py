"""A savepoint by a fixed name, for the hot paths that take one per event.

`Connection.begin_nested()` names each savepoint anew (`sa_savepoint_<n>`), so SQLAlchemy
compiles a new statement for every one it opens and releases: several times the cost of the
statement itself on SQLite. The same SQL with a name of our own is sent as it is. Savepoints
of one name may nest: SQL releases or rolls back to the innermost of that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection


@contextmanager
def savepoint(conn: Connection, name: str) -> Iterator[None]:
    """Undo what the block wrote when it raises, and nothing else; the caller's transaction
    goes on either way (began first if there was none, as `begin_nested` does)."""
    conn.exec_driver_sql(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
        raise
    conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
