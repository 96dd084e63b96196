"""A savepoint by a fixed name, for the hot paths that take one per event.

`Connection.begin_nested()` names each savepoint anew (`sa_savepoint_<n>`), so SQLAlchemy
compiles a new statement for every one it opens and releases: several times the cost of the
statement itself on SQLite. The same SQL with a name of our own is prepared once and sent to
the driver as it is. Savepoints of one name may nest: SQL releases or rolls back to the
innermost of that name.

Inside `store.pipelining.deferred_writes`, writes before the savepoint are answered when it
opens (a failure of theirs is not the block's to undo), and the block's own before it is
released, so a failure among them still rolls back to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, text

from store import read_cache
from store.pipelining import abandon, sync
from store.prepared import Prepared


@contextmanager
def savepoint(conn: Connection, name: str) -> Iterator[None]:
    """Undo what the block wrote when it raises, and nothing else; the caller's transaction
    goes on either way (began first if there was none, as `begin_nested` does)."""
    opening, undoing, releasing = _statements(name)
    opening.run(conn, {})
    # These statements pass SQLAlchemy's events by: the replay's read cache hears of them here.
    read_cache.savepoint_opened(conn, name)
    try:
        yield
        sync(conn)
    except BaseException:
        # Out of pipeline mode first: a failed pipeline refuses every statement until synced.
        abandon(conn)
        # A connection the server dropped is already invalidated: its transaction and the
        # savepoint are gone, and a statement now would raise PendingRollbackError in place of
        # the outage, which the workers retry until the database is back.
        if not conn.invalidated:
            try:
                undoing.run(conn, {})
                releasing.run(conn, {})
            except BaseException:
                # What the database still holds of the block is not known to the cache.
                read_cache.forget(conn)
                raise
            read_cache.savepoint_rolled_back(conn, name)
        raise
    releasing.write(conn, {})
    read_cache.savepoint_released(conn, name)


_BY_NAME: dict[str, tuple[Prepared, Prepared, Prepared]] = {}


def _statements(name: str) -> tuple[Prepared, Prepared, Prepared]:
    found = _BY_NAME.get(name)
    if found is None:
        if not name.isidentifier():
            raise ValueError(f"savepoint name {name!r} is not an identifier")
        found = _BY_NAME[name] = (
            Prepared(text(f"SAVEPOINT {name}")),
            Prepared(text(f"ROLLBACK TO SAVEPOINT {name}")),
            Prepared(text(f"RELEASE SAVEPOINT {name}")),
        )
    return found
