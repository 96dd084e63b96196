"""Read caches for a connection that is the only writer of its database: the replay's.

A replay into a file of its own (`replay_lines(..., own_database=True)`: `recourse replay`
without `--db`, the benchmark) applies events one after another with nobody else writing, so a
row it read or wrote is still what the database holds when it looks again, and the look can be
answered from memory. Workers, and a replay into a database given with `--db`, never enable
this: other transactions may write beside theirs, and the workers' reads take row locks that a
cache would skip.

A cache is written through (whoever writes the row puts the new value in), and forgotten
whole on every rollback, of the transaction or to any savepoint: the undone writes may have
been cached. SQLAlchemy's own savepoints (`begin_nested`) and transactions say so through the
connection's events; `ledger.savepoints` runs its statements on the driver, past those events,
and forgets by itself. Each user keeps its values under a namespace of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, event

_INFO_KEY = "recourse.read_cache"


@contextmanager
def single_writer(conn: Connection) -> Iterator[None]:
    """Cache reads on `conn` for the block: the caller promises nobody else writes meanwhile."""
    conn.info[_INFO_KEY] = {}

    def on_rollback(rolled_back: Connection, *_: Any) -> None:
        forget(rolled_back)

    event.listen(conn, "rollback", on_rollback)
    event.listen(conn, "rollback_savepoint", on_rollback)
    try:
        yield
    finally:
        event.remove(conn, "rollback", on_rollback)
        event.remove(conn, "rollback_savepoint", on_rollback)
        if not conn.invalidated:  # else its info cannot be reached (see `forget`)
            conn.info.pop(_INFO_KEY, None)


def is_single_writer(conn: Connection) -> bool:
    """Whether `conn` was promised to be its database's only writer (`single_writer`)."""
    return _INFO_KEY in conn.info


def namespace(conn: Connection, name: str) -> dict[Any, Any] | None:
    """The cache `name` of `conn`, or None when the connection does not cache."""
    caches: dict[str, dict[Any, Any]] | None = conn.info.get(_INFO_KEY)
    if caches is None:
        return None
    found = caches.get(name)
    if found is None:
        found = caches[name] = {}
    return found


def forget(conn: Connection) -> None:
    """Drop every cached value of `conn` (its writes since some point were undone)."""
    if conn.invalidated:
        # Its transaction is gone, and asking for its info now would raise in place of the
        # error that invalidated it.
        return
    caches: dict[str, dict[Any, Any]] | None = conn.info.get(_INFO_KEY)
    if caches is not None:
        caches.clear()
