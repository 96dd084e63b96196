"""Read caches for a connection that is the only writer of its database: the replay's.

A replay into a file of its own (`replay_lines(..., own_database=True)`: `recourse replay`
without `--db`, the benchmark) applies events one after another with nobody else writing, so a
row it read or wrote is still what the database holds when it looks again, and the look can be
answered from memory. Workers, and a replay into a database given with `--db`, never enable
this: other transactions may write beside theirs, and the workers' reads take row locks that a
cache would skip.

A cache is written through: whoever writes a row puts the new value in. Each user keeps its
values under a namespace of its own (`namespace`), and every change to one is logged, so that a
rollback, of the transaction or to a savepoint, puts back what the cache held when that
transaction or savepoint began. SQLAlchemy's own transactions and savepoints (`begin_nested`)
say when through the connection's events; `store.savepoints` runs its statements on the
driver, past those events, and says so itself (`savepoint_opened`, `savepoint_released`,
`savepoint_rolled_back`).

A replay into a fresh file knows more: every row there is one it wrote, and every write went
through a cache, so what a complete cache (`is_complete`) lacks the database lacks too, and
looking for it is a query saved (a new contract's rows and accounts, each new transfer id).
Rollbacks keep that knowledge (the log undoes the cache with the rows); only `forget`, when
what the database holds is no longer known (a rollback, a release or a commit that failed, any
database error raised on the connection), ends it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import ExceptionContext

_INFO_KEY = "recourse.read_cache"
_ABSENT = object()


class Namespace(dict[Any, Any]):
    """One user's cache: a dict whose every change is logged for an undo (reads are a
    dict's own). Change it by item assignment, `pop` or `put_all` only: the other ways a dict
    changes would escape the log, and raise."""

    __slots__ = ("_undo",)

    def __init__(self, undo: list[tuple[Namespace, Any, Any]]) -> None:
        super().__init__()
        self._undo = undo

    def __setitem__(self, key: Any, value: Any) -> None:
        self._undo.append((self, key, self.get(key, _ABSENT)))
        super().__setitem__(key, value)

    def pop(self, key: Any, default: Any = _ABSENT) -> Any:
        if key in self:
            self._undo.append((self, key, self[key]))
        elif default is _ABSENT:
            raise KeyError(key)
        return super().pop(key, default)

    def put_all(self, values: dict[Any, Any]) -> None:
        for key, value in values.items():
            self[key] = value

    def _restore(self, key: Any, old: Any) -> None:
        if old is _ABSENT:
            super().pop(key, None)
        else:
            super().__setitem__(key, old)

    def _unlogged(self, *_: Any, **__: Any) -> Any:
        raise TypeError("a read cache namespace changes by assignment, pop or put_all only")

    __delitem__ = setdefault = clear = popitem = update = __ior__ = _unlogged


@dataclass
class _Caches:
    complete: bool
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    # (namespace, key, value before the change) of every change since the transaction began,
    # and (name, where it began in that log) of each savepoint still open, innermost last.
    undo: list[tuple[Namespace, Any, Any]] = field(default_factory=list)
    marks: list[tuple[str | None, int]] = field(default_factory=list)

    def innermost(self, name: str) -> int | None:
        """The index in `marks` of the innermost open savepoint called `name` (SQL releases
        and rolls back to that one), or None."""
        for index in range(len(self.marks) - 1, -1, -1):
            if self.marks[index][0] == name:
                return index
        return None

    def undo_to(self, mark: int) -> None:
        while len(self.undo) > mark:
            namespace, key, old = self.undo.pop()
            namespace._restore(key, old)

    def settle(self) -> None:
        self.undo.clear()
        self.marks.clear()


@contextmanager
def single_writer(conn: Connection, *, complete: bool = False) -> Iterator[None]:
    """Cache reads on `conn` for the block: the caller promises nobody else writes meanwhile.

    `complete`: the database held no rows when the block began (nothing but its schema), so
    the caches may answer "not there" without asking (`is_complete`)."""
    if _INFO_KEY in conn.info:
        raise RuntimeError("this connection caches its reads already")
    conn.info[_INFO_KEY] = _Caches(complete=complete)
    listeners: dict[str, Callable[..., None]] = {
        # Fired before the driver's commit; should the commit fail, `on_error` forgets.
        "commit": _settle,
        "rollback": _undo_transaction,
        "savepoint": _on_savepoint,
        "release_savepoint": _on_release_savepoint,
        "rollback_savepoint": _on_rollback_savepoint,
    }
    for name, listener in listeners.items():
        event.listen(conn, name, listener)

    def on_error(context: ExceptionContext) -> None:
        # Those events fire before the driver is called: a rollback, a release or a commit that
        # then fails leaves the database other than the caches now say. Any error raised on this
        # connection through SQLAlchemy forgets them (the replay stops on such errors anyway).
        if context.connection is conn:
            forget(conn)

    event.listen(conn.engine, "handle_error", on_error)
    try:
        yield
    finally:
        event.remove(conn.engine, "handle_error", on_error)
        for name, listener in listeners.items():
            event.remove(conn, name, listener)
        if not conn.invalidated:  # else its info cannot be reached (see `forget`)
            conn.info.pop(_INFO_KEY, None)


def is_complete(conn: Connection) -> bool:
    """Whether every row of the database went through the caches of `conn`: a key missing
    from a namespace whose owner caches every row it writes is missing from the database."""
    caches: _Caches | None = conn.info.get(_INFO_KEY)
    return caches is not None and caches.complete


def namespace(conn: Connection, name: str) -> Namespace | None:
    """The cache `name` of `conn`, or None when the connection does not cache."""
    caches: _Caches | None = conn.info.get(_INFO_KEY)
    if caches is None:
        return None
    found = caches.namespaces.get(name)
    if found is None:
        found = caches.namespaces[name] = Namespace(caches.undo)
    return found


def complete_namespace(conn: Connection, name: str) -> Namespace | None:
    """The cache `name` of `conn` when it is complete (`is_complete`), else None."""
    return namespace(conn, name) if is_complete(conn) else None


def savepoint_opened(conn: Connection, name: str | None) -> None:
    """The savepoint `name` began: a rollback to it puts the caches back as they are now."""
    caches = _caches(conn)
    if caches is not None:
        caches.marks.append((name, len(caches.undo)))


def savepoint_released(conn: Connection, name: str) -> None:
    """The savepoint `name` was released, with every savepoint opened inside it (one left open
    by an error, say): their changes now belong to what is around it."""
    caches = _caches(conn)
    if caches is not None:
        index = caches.innermost(name)
        if index is None:
            forget(conn)  # a savepoint never heard of: what it covered is not known
        else:
            del caches.marks[index:]


def savepoint_rolled_back(conn: Connection, name: str) -> None:
    """The database was rolled back to the savepoint `name` (and the savepoints inside it
    are gone): the caches go back to what they held when it began."""
    caches = _caches(conn)
    if caches is not None:
        index = caches.innermost(name)
        if index is None:
            forget(conn)
        else:
            caches.undo_to(caches.marks[index][1])
            del caches.marks[index:]


def forget(conn: Connection) -> None:
    """Drop every cached value of `conn`, and what it knew about absent rows: for when what
    the database now holds is not known (a rollback or a commit that failed)."""
    caches = _caches(conn)
    if caches is not None:
        caches.namespaces.clear()
        caches.settle()
        caches.complete = False


def _caches(conn: Connection) -> _Caches | None:
    if conn.invalidated:
        # Its transaction is gone, and asking for its info now would raise in place of the
        # error that invalidated it.
        return None
    found: _Caches | None = conn.info.get(_INFO_KEY)
    return found


def _settle(conn: Connection) -> None:
    caches = _caches(conn)
    if caches is not None:
        caches.settle()


def _undo_transaction(conn: Connection) -> None:
    caches = _caches(conn)
    if caches is not None:
        caches.undo_to(0)
        caches.marks.clear()


def _on_savepoint(conn: Connection, name: str | None) -> None:
    if name is None:
        # `begin_nested` names its savepoint after this event, the next of the connection's
        # sequence. That counter is SQLAlchemy's own: should it ever go, the name stays unknown
        # and a release or rollback of it forgets the caches instead (slower, never wrong).
        sequence = getattr(conn, "_Connection__savepoint_seq", None)
        name = f"sa_savepoint_{sequence + 1}" if isinstance(sequence, int) else None
    savepoint_opened(conn, name)


def _on_release_savepoint(conn: Connection, name: str, _context: Any) -> None:
    savepoint_released(conn, name)


def _on_rollback_savepoint(conn: Connection, name: str, _context: Any) -> None:
    savepoint_rolled_back(conn, name)
