"""Account rows: finding them, and opening the ones a transfer names for the first time.

An account opens with its balance rows (one, or one per shard when hot), so that posting
only ever updates rows that exist and a lock taken before the balance check always has a row
to hold.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from ledger.accounts import check_account
from ledger.tables import SHARD_COUNT, accounts, balances
from store import read_cache
from store.prepared import InsertIfMissing, Prepared

AccountKey = tuple[str, str]  # (name, currency)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    currency: str
    may_go_negative: bool
    hot: bool
    frozen: bool


_COLUMNS = (
    accounts.c.id,
    accounts.c.name,
    accounts.c.currency,
    accounts.c.may_go_negative,
    accounts.c.hot,
    accounts.c.frozen,
)


def _account(row: tuple[Any, ...]) -> Account:
    id_, name, currency, may_go_negative, hot, frozen = row
    return Account(
        id=id_,
        name=name,
        currency=currency,
        may_go_negative=bool(may_go_negative),
        hot=bool(hot),
        frozen=bool(frozen),
    )


# Prepared once (`store.prepared`): SQLAlchemy's per-statement work costs more than running
# these statements on SQLite, and every posting runs one.
_BY_KEY = Prepared(
    select(*_COLUMNS).where(
        accounts.c.name.in_(bindparam("names", expanding=True)),
        accounts.c.currency.in_(bindparam("currencies", expanding=True)),
    )
)
_BY_ID = Prepared(select(*_COLUMNS).where(accounts.c.id.in_(bindparam("ids", expanding=True))))


ACCOUNTS_CACHE = "ledger.accounts"


def find_accounts(conn: Connection, keys: Collection[AccountKey]) -> dict[AccountKey, Account]:
    wanted = set(keys)
    cached = read_cache.namespace(conn, ACCOUNTS_CACHE)
    known: dict[AccountKey, Account] = {}
    if cached is not None:
        # Only accounts that exist are cached: one not found yet may be opened at any time.
        known = {key: cached[key] for key in wanted if key in cached}
        wanted -= known.keys()
        if not wanted or read_cache.is_complete(conn):
            # Complete: every account was opened through `open_accounts`, which caches it.
            return known
    return known | _fetch(conn, wanted)


def _fetch(conn: Connection, wanted: Collection[AccountKey]) -> dict[AccountKey, Account]:
    """The accounts `wanted` as the database holds them, put in the read cache too when the
    connection keeps one."""
    rows = _BY_KEY.rows(
        conn,
        {
            "names": sorted({name for name, _ in wanted}),
            "currencies": sorted({currency for _, currency in wanted}),
        },
    )
    found = (_account(row) for row in rows)
    fetched = {(a.name, a.currency): a for a in found if (a.name, a.currency) in wanted}
    cached = read_cache.namespace(conn, ACCOUNTS_CACHE)
    if cached is not None:
        cached.put_all(fetched)
    return fetched


def refresh_account(conn: Connection, key: AccountKey) -> None:
    """Read `key` again into the read cache: its row was changed (frozen or unfrozen). A
    complete cache (`read_cache.is_complete`) cannot merely drop it, since a key it lacks is
    an account that does not exist."""
    if read_cache.namespace(conn, ACCOUNTS_CACHE) is not None:
        _fetch(conn, [key])


def accounts_by_id(conn: Connection, ids: Iterable[int]) -> dict[int, Account]:
    found = (_account(row) for row in _BY_ID.rows(conn, {"ids": sorted(set(ids))}))
    return {account.id: account for account in found}


def open_accounts(
    conn: Connection,
    keys: Collection[AccountKey],
    found: dict[AccountKey, Account] | None = None,
) -> dict[AccountKey, Account]:
    """The accounts called `keys`, opening those that do not exist yet. `found`: what
    `find_accounts` just returned for them in this transaction, to save looking again."""
    if found is None:
        found = find_accounts(conn, keys)
    missing = sorted(set(keys) - found.keys())
    if not missing:
        return found
    account_rows = []
    for name, currency in missing:
        policy = check_account(name, currency)
        account_rows.append(
            {
                "name": name,
                "currency": currency,
                "may_go_negative": policy.may_go_negative,
                "hot": policy.hot,
                "frozen": False,
            }
        )
    # Another transaction may open the same account at the same moment: the database then
    # makes this insert wait for it and skips the row, and the select below finds theirs.
    _INSERT_MISSING[accounts].run_many(conn, account_rows)
    # Looked up in the database whatever the cache says: they were not there a moment ago.
    opened = _fetch(conn, missing)
    balance_rows = [
        {
            "account_id": account.id,
            "shard": shard,
            "may_go_negative": account.may_go_negative,
            "hot": account.hot,
            "posted_debits": 0,
            "posted_credits": 0,
            "pending_debits": 0,
            "pending_credits": 0,
        }
        for account in opened.values()
        for shard in range(SHARD_COUNT if account.hot else 1)
    ]
    _INSERT_MISSING[balances].run_many(conn, balance_rows)
    return found | opened


# Another transaction may open the same account at the same moment: the database then makes
# the insert wait for it and skips the row.
_INSERT_MISSING = {
    accounts: InsertIfMissing(accounts, key=["name", "currency"]),
    balances: InsertIfMissing(balances, key=["account_id", "shard"]),
}
