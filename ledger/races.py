"""How the book runs a movement that a racing copy of itself may meet on the unique index.

Two transactions may record the same transfer id, or resolve the same hold, at once. The
unique index makes the later insert wait and then fail once the first commits. The book hands
such a movement to a `RaceGuard`, chosen by whoever builds the book: `retry_in_savepoint` where
other transactions write beside this one (the workers, a replay into a database it shares),
`run_alone` where this connection is its database's only writer (the replay of its own file).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from store.pipelining import sync
from store.savepoints import savepoint

RaceGuard = Callable[[Connection, Callable[[], None]], None]


def retry_in_savepoint(conn: Connection, work: Callable[[], None]) -> None:
    """Run `work` in a savepoint and, when a racing copy committed first, once more in a fresh
    one, which then finds that row and answers as for any repeat (a no-op, TransferConflict or
    PendingAlreadyResolved)."""
    # Writes queued before this movement (store.pipelining) answer first, outside the retry: a
    # failure of theirs is not a racing copy of ours, and has lost the transaction anyway.
    sync(conn)
    for attempt in range(2):
        try:
            with savepoint(conn, "recourse_book"):
                work()
            return
        except IntegrityError:
            if attempt == 1:
                raise


def run_alone(conn: Connection, work: Callable[[], None]) -> None:
    """Run `work` as it is: nobody else writes, so no racing copy to wait for and look at again.

    A refusal comes before the transfers' writes, but accounts opened for them stay until
    something rolls back: the replay ends on a ledger error, and the one handler that goes on
    after one (withdrawals) holds in a savepoint of its own.
    """
    del conn
    work()
