"""Balance rows: locking them before a check, moving them, and reading them back.

Each account keeps running totals (posted and pending, debits and credits) updated in the
transaction that records its transfers, so reading a balance never scans entries. A hot
account spreads its totals over SHARD_COUNT rows and a transfer updates the one its id hashes
to, so concurrent transactions rarely wait on the same row lock; a read sums the shards.

The totals never overflow: no sequence of valid events can make a later one fail on a sum.

- PostgreSQL (production): they are NUMERIC(38,0) (`store.columns.RunningSum`), exact, read
  back as `int`; 10^38 is 10^23 postings of the largest amount (10^15) to one row.
- SQLite (embedded): it has no exact integer wider than 64 bits, and its arithmetic turns
  `col + :amount` past 2^63 - 1 into an inexact REAL without a word. Storing the totals as
  decimal text would make every update a read-modify-write in Python and every CHECK a
  string comparison; instead the totals stay INTEGER and the store is *bounded*: triggers
  (ledger0002) fail the update that would leave a total that is not an integer, and the
  posting raises `SumOutOfRange` (the transaction must then be rolled back). One balance row
  takes 9,223 postings of the largest amount ((2^63 - 1) // 10^15), and a hot account has
  SHARD_COUNT rows, each bounded alike; real amounts take far more. Nothing is ever stored
  rounded. Reads add the rows in Python, never in SQLite, so a hot account's total is exact
  even past 2^63 - 1 and the per-row bound is the only one.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from ledger.registry import Account
from ledger.tables import SHARD_COUNT, accounts, balances
from store import read_cache
from store.errors import SumOutOfRange
from store.prepared import Prepared


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's balance from its owner's side: credits minus debits."""

    posted_minor: int
    pending_debits_minor: int
    pending_credits_minor: int

    @property
    def available_minor(self) -> int:
        """What the owner can spend: money on hold for a pending debit is not theirs to use."""
        return self.posted_minor - self.pending_debits_minor


ZERO = Balance(0, 0, 0)


def shard_for(account: Account, key: str) -> int:
    if not account.hot:
        return 0
    scoped = _POSTING_SHARD_SCOPE.get()
    if scoped is not None:
        return scoped
    # crc32, not hash(): the shard must not change between processes.
    return zlib.crc32(key.encode()) % SHARD_COUNT


_POSTING_SHARD_SCOPE: ContextVar[int | None] = ContextVar("posting_shard_scope", default=None)


@contextmanager
def posting_shard_scope(number: int) -> Iterator[None]:
    """Inside the block every posting moves the shard `number % SHARD_COUNT` of each hot
    account.

    The ordered runtime applies several events in one transaction (`workers.intake.drain`):
    chosen by cause, their postings would take up to every shard row of `platform:fees` one
    after another, and two such transactions would hold rows the other wants next. With one
    shard a transaction, taken first with `lock_hot_shard`, two transactions either use other
    rows or queue on the same ones in the same order. Which shard row holds a posting changes
    no balance: an account's balance is the sum of its rows.
    """
    token = _POSTING_SHARD_SCOPE.set(number % SHARD_COUNT)
    try:
        yield
    finally:
        _POSTING_SHARD_SCOPE.reset(token)


def lock_hot_shard(conn: Connection, number: int) -> None:
    """Lock, in account order, the rows of every hot account in the shard `number %
    SHARD_COUNT`."""
    conn.execute(
        select(balances.c.account_id)
        .where(balances.c.hot, balances.c.shard == number % SHARD_COUNT)
        .order_by(balances.c.account_id)
        .with_for_update()
    ).all()


def posting_shard_key(transfer_id: str) -> str:
    """What a posted transfer's shard of a hot account is chosen by (outside a
    `posting_shard_scope`): its cause, the part of its id before the last `#`
    (`HandlerContext.transfer` numbers a cause's transfers `<cause>#<n>`), or the whole id when
    it has none.

    Every posting of one event then moves the same shard row of a hot account. Chosen by each
    transfer's own id, two postings of one transaction (a dispute's refund, then its release)
    updated two shard rows of `platform:fees` in two steps, and two such transactions could
    each hold the row the other wanted next: a deadlock PostgreSQL breaks after
    `deadlock_timeout` (docs/performance.md, "Locks taken in one step").
    """
    cause, separator, _ = transfer_id.rpartition("#")
    return cause if separator else transfer_id


@dataclass(frozen=True, slots=True)
class Locked:
    """What the lock on the non-hot accounts of a movement read: available and frozen."""

    available: dict[int, int]
    frozen: frozenset[int]

    def current(self, account: Account) -> Account:
        """`account` with its frozen flag as read under the lock (hot accounts are not locked,
        and keep the flag read when they were looked up)."""
        if account.hot:
            return account
        frozen = account.id in self.frozen
        # Nearly always unchanged: no copy then (a dataclass copy costs as much as the lookup).
        return account if account.frozen == frozen else replace(account, frozen=frozen)


LOCKS_CACHE = "ledger.locks"
"""The read cache (`store.read_cache`) of what `lock_accounts` reads: account id ->
(available, frozen), for accounts that are not hot."""


def lock_accounts(conn: Connection, touched: Iterable[Account]) -> Locked:
    """Lock the non-hot accounts among `touched`, with their balance rows, until the
    transaction ends.

    Rows are locked in account id order, the same order every transaction uses, so two
    transactions that touch the same accounts queue instead of deadlocking. The account row
    is locked too, so a freeze committed while we waited is what we read (PostgreSQL
    re-reads a locked row that changed). SQLite has no row locks: its write transaction
    holds the whole database from its start.
    """
    ids = sorted({account.id for account in touched if not account.hot})
    if not ids:
        return Locked({}, frozenset())
    cached = read_cache.namespace(conn, LOCKS_CACHE)
    if cached is None:
        return _locked(_lock(conn, ids))
    # A single writer (the replay): nobody to wait for, and what it last read or wrote of a
    # balance row is what the row holds (`Movements.write` keeps it so; the book's freezes
    # drop it, to be read again).
    missing = [account_id for account_id in ids if account_id not in cached]
    if missing:
        cached.put_all(_lock(conn, missing))
    return _locked({account_id: cached[account_id] for account_id in ids})


def _lock(conn: Connection, ids: list[int]) -> dict[int, tuple[int, bool]]:
    rows = _LOCK.rows(conn, {"ids": ids, "account_ids": ids})
    if len(rows) != len(ids):
        # An account opens with its balance row; without it nothing would be locked, checked
        # or moved, and the posting would record transfers that no balance shows.
        missing = sorted(set(ids) - {int(row[0]) for row in rows})
        raise RuntimeError(f"accounts {missing} have no balance row: the ledger is damaged")
    return {
        int(account_id): (int(available), bool(frozen)) for account_id, available, frozen in rows
    }


def _locked(read: dict[int, tuple[int, bool]]) -> Locked:
    return Locked(
        available={account_id: available for account_id, (available, _) in read.items()},
        frozen=frozenset(account_id for account_id, (_, frozen) in read.items() if frozen),
    )


def remember_opened(conn: Connection, opened: Iterable[Account]) -> None:
    """Accounts this connection has just opened have nothing available yet."""
    cached = read_cache.namespace(conn, LOCKS_CACHE)
    if cached is not None:
        for account in opened:
            # Never over a row already known: a cache that missed an account it had opened
            # would otherwise reset its balance without a word.
            if not account.hot and account.id not in cached:
                cached[account.id] = (0, account.frozen)


def forget_lock(conn: Connection, account_id: int) -> None:
    """The account's row changed (frozen or unfrozen): read it again next time."""
    cached = read_cache.namespace(conn, LOCKS_CACHE)
    if cached is not None:
        cached.pop(account_id, None)


# Prepared once (`store.prepared`): every posting runs these, and SQLAlchemy's per-statement
# work costs more than running them on SQLite.
# `available` is computed by the database. On SQLite it is exact wherever it is used: only an
# account that may not go negative has its available checked, and there the CHECK
# ck_ledger_balances_not_negative keeps it between 0 and posted_credits, so no intermediate
# leaves the 64-bit range. On PostgreSQL NUMERIC arithmetic is exact anyway.
_LOCK = Prepared(
    select(
        balances.c.account_id,
        (balances.c.posted_credits - balances.c.posted_debits - balances.c.pending_debits).label(
            "available"
        ),
        accounts.c.frozen,
    )
    .join(accounts, accounts.c.id == balances.c.account_id)
    .where(
        balances.c.account_id.in_(bindparam("ids", expanding=True)),
        # The same ids on the accounts' side too: without statistics (autovacuum off, a table
        # just grown) the planner would otherwise hash a sequential scan of every account for
        # each posting; with both, it walks the two primary keys (docs/operations.md).
        accounts.c.id.in_(bindparam("account_ids", expanding=True)),
    )
    .order_by(balances.c.account_id)
    # NO KEY UPDATE: strong enough to queue behind a freeze or another movement, without
    # blocking the foreign key checks of rows that merely point at the account.
    .with_for_update(key_share=True),
    # Even so, a generic plan cached while the accounts were few scanned them all for two or
    # more ids, and went on doing so as they grew (`Prepared`'s `plan_each_time`).
    plan_each_time=True,
)


class Movements:
    """The changes a batch makes to balance rows, summed per row before any is written."""

    def __init__(self) -> None:
        self._rows: defaultdict[tuple[bool, int, int], list[int]] = defaultdict(
            lambda: [0, 0, 0, 0]
        )

    def add(
        self,
        account: Account,
        shard: int,
        *,
        posted_debits: int = 0,
        posted_credits: int = 0,
        pending_debits: int = 0,
        pending_credits: int = 0,
    ) -> None:
        totals = self._rows[(account.hot, account.id, shard)]
        totals[0] += posted_debits
        totals[1] += posted_credits
        totals[2] += pending_debits
        totals[3] += pending_credits

    def write(self, conn: Connection) -> None:
        # Non-hot rows first (already locked, in id order), then hot rows in id and shard
        # order: one global lock order for every transaction.
        params = [
            {
                "row_account_id": account_id,
                "row_shard": shard,
                "d_posted_debits": totals[0],
                "d_posted_credits": totals[1],
                "d_pending_debits": totals[2],
                "d_pending_credits": totals[3],
            }
            for (_, account_id, shard), totals in sorted(self._rows.items())
        ]
        try:
            _MOVE.run_many(conn, params)
        except IntegrityError as error:
            if SUM_OUT_OF_RANGE not in str(error.orig):
                raise
            raise SumOutOfRange(
                "a balance total would pass 2^63 - 1, the most the embedded (SQLite) store"
                " keeps exactly: nothing was rounded, roll the transaction back"
            ) from error
        self._keep_cached(conn)

    def _keep_cached(self, conn: Connection) -> None:
        """Move what `lock_accounts` cached of the rows just written, as the rows moved."""
        cached = read_cache.namespace(conn, LOCKS_CACHE)
        if cached is None:
            return
        for (hot, account_id, _), totals in self._rows.items():
            held = None if hot else cached.get(account_id)
            if held is not None:
                posted_debits, posted_credits, pending_debits, _ = totals
                available, frozen = held
                cached[account_id] = (
                    available + posted_credits - posted_debits - pending_debits,
                    frozen,
                )


_MOVE = Prepared(
    update(balances)
    .where(
        balances.c.account_id == bindparam("row_account_id"),
        balances.c.shard == bindparam("row_shard"),
    )
    .values(
        posted_debits=balances.c.posted_debits + bindparam("d_posted_debits"),
        posted_credits=balances.c.posted_credits + bindparam("d_posted_credits"),
        pending_debits=balances.c.pending_debits + bindparam("d_pending_debits"),
        pending_credits=balances.c.pending_credits + bindparam("d_pending_credits"),
    )
)


SUM_OUT_OF_RANGE = "ledger_balances_sum_out_of_range"
"""What the SQLite triggers of ledger0002 fail an update with."""


# Each shard row as it is, added up in Python: exact on both backends, where SQLite's SUM of
# 16 shards could pass 2^63 - 1 (and fail) even though each row is within it.
_READ = Prepared(
    select(
        balances.c.posted_debits,
        balances.c.posted_credits,
        balances.c.pending_debits,
        balances.c.pending_credits,
    ).where(balances.c.account_id == bindparam("account_id"))
)


def read_balance(conn: Connection, account: Account) -> Balance:
    posted = pending_debits = pending_credits = 0
    for (
        row_posted_debits,
        row_posted_credits,
        row_pending_debits,
        row_pending_credits,
    ) in _READ.rows(conn, {"account_id": account.id}):
        posted += int(row_posted_credits) - int(row_posted_debits)
        pending_debits += int(row_pending_debits)
        pending_credits += int(row_pending_credits)
    return Balance(posted, pending_debits, pending_credits)
