"""The ledger's tables, on a MetaData of their own (`ledger/migrations` builds them).

The constraints are the database's half of the books' guards, so a bug or a hand-written
statement that bypasses the Python code still cannot break them:

- an amount is a positive integer; a transfer never debits the account it credits;
- both accounts of a transfer hold its currency: (account id, currency) is a foreign key
  into the accounts, so a transfer between currencies has nowhere to point;
- a balance row carries its account's flags through a foreign key, and a CHECK refuses an
  available balance below zero where the flag forbids it;
- a pending transfer is resolved (posted or voided) at most once, by a transfer between the
  same two accounts in the same currency;
- on PostgreSQL a trigger refuses UPDATE, DELETE and TRUNCATE of transfers (the migration);
- a balance row's four totals are running sums, exact whatever the number of postings: NUMERIC
  on PostgreSQL; on SQLite 64-bit integers, and triggers refuse a total that SQLite's
  arithmetic would turn into an inexact REAL past 2^63 - 1 (`store.columns.RunningSum`,
  ledger0002). An amount itself stays BIGINT: it is at most 10^15.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

from store.columns import RunningSum, UtcDateTime

metadata = MetaData()

SHARD_COUNT = 16
# SQLite makes a column an auto-numbered row id only when it is declared INTEGER exactly.
_ID = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", _ID, autoincrement=True, nullable=False),
    Column("name", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("may_go_negative", Boolean, nullable=False),
    Column("hot", Boolean, nullable=False),
    Column("frozen", Boolean, nullable=False),
    PrimaryKeyConstraint("id", name="pk_ledger_accounts"),
    UniqueConstraint("name", "currency", name="uq_ledger_accounts_name_currency"),
    # Targets of the composite foreign keys below: they let other rows carry the currency
    # and the flags of an account and have the database check they match.
    UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
    UniqueConstraint("id", "may_go_negative", "hot", name="uq_ledger_accounts_id_flags"),
    CheckConstraint("length(currency) = 3", name="ck_ledger_accounts_currency"),
    # A shard row is checked on its own, which says nothing about the account's sum.
    CheckConstraint("may_go_negative OR NOT hot", name="ck_ledger_accounts_hot_may_go_negative"),
)

balances = Table(
    "ledger_balances",
    metadata,
    Column("account_id", BigInteger, autoincrement=False, nullable=False),
    Column("shard", SmallInteger, autoincrement=False, nullable=False),
    Column("may_go_negative", Boolean, nullable=False),
    Column("hot", Boolean, nullable=False),
    Column("posted_debits", RunningSum(), nullable=False),
    Column("posted_credits", RunningSum(), nullable=False),
    Column("pending_debits", RunningSum(), nullable=False),
    Column("pending_credits", RunningSum(), nullable=False),
    PrimaryKeyConstraint("account_id", "shard", name="pk_ledger_balances"),
    ForeignKeyConstraint(
        ["account_id", "may_go_negative", "hot"],
        ["ledger_accounts.id", "ledger_accounts.may_go_negative", "ledger_accounts.hot"],
        name="fk_ledger_balances_account_flags",
    ),
    CheckConstraint(
        f"shard >= 0 AND shard < {SHARD_COUNT} AND (hot OR shard = 0)",
        name="ck_ledger_balances_shard",
    ),
    CheckConstraint(
        "posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0"
        " AND pending_credits >= 0",
        name="ck_ledger_balances_totals",
    ),
    CheckConstraint(
        "may_go_negative OR posted_credits - posted_debits - pending_debits >= 0",
        name="ck_ledger_balances_not_negative",
    ),
)

# The hot accounts' rows of one shard, which a drain of the ordered runtime locks first.
Index(
    "ledger_balances_hot_shard",
    balances.c.shard,
    balances.c.account_id,
    postgresql_where=balances.c.hot,
    sqlite_where=balances.c.hot,
)

transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", _ID, autoincrement=True, nullable=False),
    Column("transfer_id", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("code", String(32), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    # The pending transfer that this one posts or voids (its row id).
    Column("pending_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("id", name="pk_ledger_transfers"),
    UniqueConstraint("transfer_id", name="uq_ledger_transfers_transfer_id"),
    UniqueConstraint("pending_id", name="uq_ledger_transfers_pending_id"),
    UniqueConstraint(
        "id",
        "debit_account_id",
        "credit_account_id",
        "currency",
        name="uq_ledger_transfers_id_accounts",
    ),
    ForeignKeyConstraint(
        ["debit_account_id", "currency"],
        ["ledger_accounts.id", "ledger_accounts.currency"],
        name="fk_ledger_transfers_debit_currency",
    ),
    ForeignKeyConstraint(
        ["credit_account_id", "currency"],
        ["ledger_accounts.id", "ledger_accounts.currency"],
        name="fk_ledger_transfers_credit_currency",
    ),
    ForeignKeyConstraint(
        ["pending_id", "debit_account_id", "credit_account_id", "currency"],
        [
            "ledger_transfers.id",
            "ledger_transfers.debit_account_id",
            "ledger_transfers.credit_account_id",
            "ledger_transfers.currency",
        ],
        name="fk_ledger_transfers_pending_accounts",
    ),
    CheckConstraint("amount_minor > 0", name="ck_ledger_transfers_amount_positive"),
    CheckConstraint(
        "debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"
    ),
    CheckConstraint("length(transfer_id) > 0", name="ck_ledger_transfers_transfer_id"),
    CheckConstraint(
        "(kind IN ('posted', 'pending') AND pending_id IS NULL)"
        " OR (kind IN ('post_pending', 'void_pending') AND pending_id IS NOT NULL)",
        name="ck_ledger_transfers_kind",
    ),
    Index("ix_ledger_transfers_debit_account_id", "debit_account_id"),
    Index("ix_ledger_transfers_credit_account_id", "credit_account_id"),
)
