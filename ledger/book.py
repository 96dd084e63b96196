"""The book: the one place where money moves.

Every method works inside the caller's transaction and never commits. When a movement is
refused nothing of it remains and the caller's transaction goes on: a movement checks
everything before its first write, and the two that cannot (one that opens an account first,
one between two hot accounts, which no row lock serialises against a racing copy of itself)
run in a savepoint.

One race is left to the caller: two transactions recording *conflicting* copies of one transfer
id (other fields, other non-hot accounts, so no lock they share) both pass their checks, and
the later insert fails on the unique index with IntegrityError, its transaction lost. Transfer
ids are derived from event ids, so this takes a bug upstream; the workers treat the error as a
collision and try the event again, which then meets TransferConflict.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, or_, select, update

from ledger import journal
from ledger.accounts import check_account
from ledger.balances import (
    ZERO,
    Balance,
    Movements,
    forget_lock,
    lock_accounts,
    posting_shard_key,
    read_balance,
    remember_opened,
    shard_for,
)
from ledger.errors import (
    AccountFrozen,
    InvalidTransfer,
    Overdraft,
    PendingAlreadyResolved,
    PendingNotFound,
    TransferConflict,
)
from ledger.journal import Entry
from ledger.races import RaceGuard, retry_in_savepoint
from ledger.registry import (
    Account,
    AccountKey,
    accounts_by_id,
    find_accounts,
    open_accounts,
    refresh_account,
)
from ledger.tables import accounts, balances, transfers
from ledger.transfers import Transfer, TransferKind, check_amount, check_cause, check_transfer


class Book:
    def __init__(self, conn: Connection, *, races: RaceGuard = retry_in_savepoint) -> None:
        """`races`: how a movement that a racing copy of itself may meet is run
        (`ledger.races`); the default suits any connection that other transactions write
        beside."""
        self._conn = conn
        self._races = races

    def post(self, transfers: Sequence[Transfer]) -> None:
        """Post `transfers` in order, all or none.

        A transfer id already recorded with the same fields is skipped; with other fields it
        raises TransferConflict. Raises AccountFrozen, Overdraft (for an account that may not
        go negative, judged after the transfers before it in the batch), InvalidTransfer or
        CurrencyMismatch, and then posts nothing.
        """
        batch = list(transfers)
        for transfer in batch:
            check_transfer(transfer)
        if batch:
            self._record_once(batch, TransferKind.POSTED)

    def lock(self, names: Sequence[str], currency: str) -> None:
        """Take now, in one statement, the balance locks that later postings to `names` in
        this transaction would take one posting at a time.

        Each posting locks its accounts in id order, but a transaction that posts twice locks
        in two steps. Two such transactions whose steps cross (one holds U and waits for V,
        the other holds V and waits for U) deadlock, and PostgreSQL breaks a deadlock only
        after `deadlock_timeout`, 1 s by default, while both and everything queued behind
        them wait. A handler that will post more than once locks the union first (hot
        accounts are left out: a shard row is locked only by the update that moves it, and
        the postings of one event move one shard row of each, `posting_shard_key`). Accounts
        that do not exist yet are opened here, in name order, for the same reason: two
        transactions that each open one of the other's accounts and then the other wait for
        each other on the accounts' unique index. Open them only for postings sure to follow:
        an account opened without an entry still counts in the audit and the operator's
        lookups.
        """
        keys = {(name, currency) for name in names}
        for name, _ in keys:
            check_account(name, currency)
        found = find_accounts(self._conn, keys)
        if len(found) < len(keys):
            found = self._open(keys, found)
        lock_accounts(self._conn, found.values())

    def hold(self, transfer: Transfer) -> None:
        """Reserve `transfer`: the debit account can no longer spend it, the credit account
        does not have it yet. Post or void it later by its transfer id."""
        check_transfer(transfer)
        self._record_once([transfer], TransferKind.PENDING)

    def post_pending(
        self,
        pending_id: str,
        *,
        transfer_id: str,
        event_id: str,
        occurred_at: datetime,
        amount_minor: int | None = None,
    ) -> None:
        """Post all of the hold `pending_id` (amount None) or part of it; the rest of the hold
        returns to the debit account."""
        check_cause(transfer_id, event_id, occurred_at)
        if amount_minor is not None:
            check_amount(amount_minor)
        self._resolve_once(
            pending_id,
            TransferKind.POST_PENDING,
            transfer_id=transfer_id,
            event_id=event_id,
            occurred_at=occurred_at,
            amount_minor=amount_minor,
        )

    def void_pending(
        self, pending_id: str, *, transfer_id: str, event_id: str, occurred_at: datetime
    ) -> None:
        """Release the hold `pending_id` whole: the debit account can spend it again."""
        check_cause(transfer_id, event_id, occurred_at)
        self._resolve_once(
            pending_id,
            TransferKind.VOID_PENDING,
            transfer_id=transfer_id,
            event_id=event_id,
            occurred_at=occurred_at,
            amount_minor=None,
        )

    def freeze(self, name: str, currency: str) -> None:
        """Refuse every movement in or out of the account until it is unfrozen. An account
        with no entries yet opens frozen."""
        check_account(name, currency)
        key = (name, currency)
        account = open_accounts(self._conn, [key])[key]
        self._set_frozen(key, account.id, frozen=True)

    def unfreeze(self, name: str, currency: str) -> None:
        check_account(name, currency)
        account = find_accounts(self._conn, [(name, currency)]).get((name, currency))
        if account is not None:
            self._set_frozen((name, currency), account.id, frozen=False)

    def is_frozen(self, name: str, currency: str) -> bool:
        check_account(name, currency)
        account = find_accounts(self._conn, [(name, currency)]).get((name, currency))
        return account is not None and account.frozen

    def balance(self, name: str, currency: str) -> Balance:
        """The account's balance; an account that never moved has zero everywhere."""
        check_account(name, currency)
        account = find_accounts(self._conn, [(name, currency)]).get((name, currency))
        return ZERO if account is None else read_balance(self._conn, account)

    def balances(self) -> dict[str, dict[str, int]]:
        """{name: {currency: available}} of every account with at least one entry."""
        has_entry = or_(
            exists().where(transfers.c.debit_account_id == accounts.c.id),
            exists().where(transfers.c.credit_account_id == accounts.c.id),
        )
        # Each balance row as it is, added up here: exact on both backends (SQLite's SUM over
        # a hot account's shards could pass 2^63 - 1 though each row is within it).
        rows = self._conn.execute(
            select(
                accounts.c.name,
                accounts.c.currency,
                balances.c.posted_credits,
                balances.c.posted_debits,
                balances.c.pending_debits,
            )
            .join(balances, balances.c.account_id == accounts.c.id)
            .where(has_entry)
        )
        report: dict[str, dict[str, int]] = {}
        for row in rows:
            held = report.setdefault(row.name, {})
            held[row.currency] = (
                held.get(row.currency, 0)
                + int(row.posted_credits)
                - int(row.posted_debits)
                - int(row.pending_debits)
            )
        return report

    def entries(self, name: str, currency: str) -> list[Entry]:
        """Every transfer that touched the account, oldest first (by event time)."""
        check_account(name, currency)
        account = find_accounts(self._conn, [(name, currency)]).get((name, currency))
        return [] if account is None else journal.entries_of(self._conn, account.id)

    def _set_frozen(self, key: AccountKey, account_id: int, *, frozen: bool) -> None:
        self._conn.execute(
            update(accounts).where(accounts.c.id == account_id).values(frozen=frozen)
        )
        refresh_account(self._conn, key)
        forget_lock(self._conn, account_id)

    def _record_once(self, batch: list[Transfer], kind: TransferKind) -> None:
        keys = {(t.debit, t.currency) for t in batch} | {(t.credit, t.currency) for t in batch}
        found = find_accounts(self._conn, keys)
        if len(found) == len(keys) and not any(
            found[(t.debit, t.currency)].hot and found[(t.credit, t.currency)].hot for t in batch
        ):
            # Every account exists and each transfer locks a non-hot one: a racing copy of a
            # transfer queues on that lock and then sees this one, and every refusal comes
            # before the first write. No savepoint (two statements, two round trips).
            self._record(batch, kind, found)
            return
        self._races(self._conn, lambda: self._record(batch, kind, self._open(keys, found)))

    def _open(
        self, keys: set[AccountKey], found: dict[AccountKey, Account]
    ) -> dict[AccountKey, Account]:
        opened = open_accounts(self._conn, keys, found)
        remember_opened(self._conn, (opened[key] for key in keys - found.keys()))
        return opened

    def _resolve_once(
        self,
        pending_id: str,
        kind: TransferKind,
        *,
        transfer_id: str,
        event_id: str,
        occurred_at: datetime,
        amount_minor: int | None,
    ) -> None:
        held = journal.find_held(self._conn, pending_id)
        if held is None or held.kind is not TransferKind.PENDING:
            raise PendingNotFound(pending_id)
        amount = held.amount_minor if amount_minor is None else amount_minor
        if amount > held.amount_minor:
            raise InvalidTransfer(
                f"cannot post {amount} of the hold {pending_id!r} of {held.amount_minor}"
            )
        # The hold and its accounts never change once written (a frozen flag is read again
        # under the lock), so a second attempt may reuse what was read here.
        by_id = accounts_by_id(self._conn, [held.debit_account_id, held.credit_account_id])

        def resolve() -> None:
            self._resolve(
                pending_id,
                held,
                by_id,
                kind,
                transfer_id=transfer_id,
                event_id=event_id,
                occurred_at=occurred_at,
                amount=amount,
            )

        if all(account.hot for account in by_id.values()):
            # No row lock serialises two resolutions of a hold between hot accounts: the
            # later one may fail on the unique index, and must then be undone and looked at.
            self._races(self._conn, resolve)
        else:
            resolve()

    def _record(
        self, batch: list[Transfer], kind: TransferKind, opened: dict[AccountKey, Account]
    ) -> None:
        # Lock before looking for earlier copies, so a copy committed while we waited is seen.
        locked = lock_accounts(self._conn, opened.values())
        available = dict(locked.available)
        seen = journal.recorded(self._conn, {t.transfer_id for t in batch})
        rows: list[dict[str, Any]] = []
        movements = Movements()
        for transfer in batch:
            entry = Entry(
                transfer_id=transfer.transfer_id,
                kind=kind,
                debit=transfer.debit,
                credit=transfer.credit,
                amount_minor=transfer.amount_minor,
                currency=transfer.currency,
                code=transfer.code,
                event_id=transfer.event_id,
                occurred_at=transfer.occurred_at,
                pending_id=None,
            )
            earlier = seen.get(transfer.transfer_id)
            if earlier is not None:
                if earlier != entry:
                    raise TransferConflict(transfer.transfer_id)
                continue
            seen[transfer.transfer_id] = entry
            debit = locked.current(opened[(transfer.debit, transfer.currency)])
            credit = locked.current(opened[(transfer.credit, transfer.currency)])
            _refuse_frozen(debit, credit)
            amount = transfer.amount_minor
            _spend(available, debit, amount)
            if kind is TransferKind.POSTED:
                _receive(available, credit, amount)
            rows.append(_row(entry, debit, credit, pending_row_id=None))
            if kind is TransferKind.POSTED:
                key = posting_shard_key(transfer.transfer_id)
                movements.add(debit, shard_for(debit, key), posted_debits=amount)
                movements.add(credit, shard_for(credit, key), posted_credits=amount)
            else:
                # A hold's shard stays the one of its own id: its resolution finds it there.
                movements.add(debit, shard_for(debit, transfer.transfer_id), pending_debits=amount)
                movements.add(
                    credit, shard_for(credit, transfer.transfer_id), pending_credits=amount
                )
        journal.record(self._conn, rows)
        movements.write(self._conn)

    def _resolve(
        self,
        pending_id: str,
        held: journal.Held,
        by_id: dict[int, Account],
        kind: TransferKind,
        *,
        transfer_id: str,
        event_id: str,
        occurred_at: datetime,
        amount: int,
    ) -> None:
        locked = lock_accounts(self._conn, by_id.values())
        debit = locked.current(by_id[held.debit_account_id])
        credit = locked.current(by_id[held.credit_account_id])
        entry = Entry(
            transfer_id=transfer_id,
            kind=kind,
            debit=debit.name,
            credit=credit.name,
            amount_minor=amount,
            currency=held.currency,
            code=held.code,
            event_id=event_id,
            occurred_at=occurred_at,
            pending_id=pending_id,
        )
        earlier = journal.recorded(self._conn, [transfer_id]).get(transfer_id)
        if earlier is not None:
            if earlier != entry:
                raise TransferConflict(transfer_id)
            return
        if journal.is_resolved(self._conn, held):
            raise PendingAlreadyResolved(pending_id)
        _refuse_frozen(debit, credit)
        journal.record(self._conn, [_row(entry, debit, credit, pending_row_id=held.row_id)])
        posted = amount if kind is TransferKind.POST_PENDING else 0
        # The hold's own shard, so no shard's pending total ever dips below zero.
        movements = Movements()
        movements.add(
            debit,
            shard_for(debit, pending_id),
            pending_debits=-held.amount_minor,
            posted_debits=posted,
        )
        movements.add(
            credit,
            shard_for(credit, pending_id),
            pending_credits=-held.amount_minor,
            posted_credits=posted,
        )
        movements.write(self._conn)


def _refuse_frozen(*accounts: Account) -> None:
    for account in accounts:
        if account.frozen:
            raise AccountFrozen(account.name)


def _spend(available: dict[int, int], account: Account, amount: int) -> None:
    if account.may_go_negative:
        return
    have = available[account.id]
    if have < amount:
        raise Overdraft(account.name, account.currency, have, amount)
    available[account.id] = have - amount


def _receive(available: dict[int, int], account: Account, amount: int) -> None:
    if not account.may_go_negative:
        available[account.id] += amount


def _row(
    entry: Entry, debit: Account, credit: Account, *, pending_row_id: int | None
) -> dict[str, Any]:
    return {
        "transfer_id": entry.transfer_id,
        "kind": entry.kind.value,
        "debit_account_id": debit.id,
        "credit_account_id": credit.id,
        "amount_minor": entry.amount_minor,
        "currency": entry.currency,
        "code": entry.code.value,
        "event_id": entry.event_id,
        "occurred_at": entry.occurred_at,
        "pending_id": pending_row_id,
    }
