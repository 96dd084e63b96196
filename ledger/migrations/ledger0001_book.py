"""The book: accounts, per-account balance rows (sharded for hot accounts), transfers.

On PostgreSQL, triggers make transfers immutable and check that a transfer resolving a pending
one posts at most its amount (a void exactly its amount) of a transfer that is pending.

Revision ID: ledger0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger0001"
down_revision = None
branch_labels = ("ledger",)
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_POSTGRESQL_TRIGGERS = [
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger transfers are immutable: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END;
    $$
    """,
    """
    CREATE TRIGGER ledger_transfers_immutable
        BEFORE UPDATE OR DELETE ON ledger_transfers
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE TRIGGER ledger_transfers_no_truncate
        BEFORE TRUNCATE ON ledger_transfers
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()
    """,
    """
    CREATE FUNCTION ledger_check_resolution() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        held ledger_transfers%ROWTYPE;
    BEGIN
        SELECT * INTO held FROM ledger_transfers WHERE id = NEW.pending_id;
        IF held.kind IS DISTINCT FROM 'pending' THEN
            RAISE EXCEPTION 'transfer % resolves %, which is not pending',
                NEW.transfer_id, NEW.pending_id
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF NEW.amount_minor > held.amount_minor
           OR (NEW.kind = 'void_pending' AND NEW.amount_minor <> held.amount_minor) THEN
            RAISE EXCEPTION 'transfer % moves % of a hold of %',
                NEW.transfer_id, NEW.amount_minor, held.amount_minor
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END;
    $$
    """,
    """
    CREATE TRIGGER ledger_transfers_resolution
        BEFORE INSERT ON ledger_transfers
        FOR EACH ROW WHEN (NEW.pending_id IS NOT NULL)
        EXECUTE FUNCTION ledger_check_resolution()
    """,
]


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.Column("hot", sa.Boolean(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_accounts"),
        sa.UniqueConstraint("name", "currency", name="uq_ledger_accounts_name_currency"),
        sa.UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
        sa.UniqueConstraint("id", "may_go_negative", "hot", name="uq_ledger_accounts_id_flags"),
        sa.CheckConstraint("length(currency) = 3", name="ck_ledger_accounts_currency"),
        sa.CheckConstraint(
            "may_go_negative OR NOT hot", name="ck_ledger_accounts_hot_may_go_negative"
        ),
    )
    op.create_table(
        "ledger_balances",
        sa.Column("account_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("shard", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("may_go_negative", sa.Boolean(), nullable=False),
        sa.Column("hot", sa.Boolean(), nullable=False),
        sa.Column("posted_debits", sa.BigInteger(), nullable=False),
        sa.Column("posted_credits", sa.BigInteger(), nullable=False),
        sa.Column("pending_debits", sa.BigInteger(), nullable=False),
        sa.Column("pending_credits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "shard", name="pk_ledger_balances"),
        sa.ForeignKeyConstraint(
            ["account_id", "may_go_negative", "hot"],
            ["ledger_accounts.id", "ledger_accounts.may_go_negative", "ledger_accounts.hot"],
            name="fk_ledger_balances_account_flags",
        ),
        sa.CheckConstraint(
            "shard >= 0 AND shard < 16 AND (hot OR shard = 0)", name="ck_ledger_balances_shard"
        ),
        sa.CheckConstraint(
            "posted_debits >= 0 AND posted_credits >= 0 AND pending_debits >= 0"
            " AND pending_credits >= 0",
            name="ck_ledger_balances_totals",
        ),
        sa.CheckConstraint(
            "may_go_negative OR posted_credits - posted_debits - pending_debits >= 0",
            name="ck_ledger_balances_not_negative",
        ),
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("transfer_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("debit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("credit_account_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_transfers"),
        sa.UniqueConstraint("transfer_id", name="uq_ledger_transfers_transfer_id"),
        sa.UniqueConstraint("pending_id", name="uq_ledger_transfers_pending_id"),
        sa.UniqueConstraint(
            "id",
            "debit_account_id",
            "credit_account_id",
            "currency",
            name="uq_ledger_transfers_id_accounts",
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.currency"],
            name="fk_ledger_transfers_debit_currency",
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.currency"],
            name="fk_ledger_transfers_credit_currency",
        ),
        sa.ForeignKeyConstraint(
            ["pending_id", "debit_account_id", "credit_account_id", "currency"],
            [
                "ledger_transfers.id",
                "ledger_transfers.debit_account_id",
                "ledger_transfers.credit_account_id",
                "ledger_transfers.currency",
            ],
            name="fk_ledger_transfers_pending_accounts",
        ),
        sa.CheckConstraint("amount_minor > 0", name="ck_ledger_transfers_amount_positive"),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name="ck_ledger_transfers_two_accounts"
        ),
        sa.CheckConstraint("length(transfer_id) > 0", name="ck_ledger_transfers_transfer_id"),
        sa.CheckConstraint(
            "(kind IN ('posted', 'pending') AND pending_id IS NULL)"
            " OR (kind IN ('post_pending', 'void_pending') AND pending_id IS NOT NULL)",
            name="ck_ledger_transfers_kind",
        ),
    )
    op.create_index(
        "ix_ledger_transfers_debit_account_id", "ledger_transfers", ["debit_account_id"]
    )
    op.create_index(
        "ix_ledger_transfers_credit_account_id", "ledger_transfers", ["credit_account_id"]
    )
    if op.get_context().dialect.name == "postgresql":
        for statement in _POSTGRESQL_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_transfers_resolution ON ledger_transfers")
        op.execute("DROP TRIGGER ledger_transfers_no_truncate ON ledger_transfers")
        op.execute("DROP TRIGGER ledger_transfers_immutable ON ledger_transfers")
        op.execute("DROP FUNCTION ledger_check_resolution()")
        op.execute("DROP FUNCTION ledger_refuse_change()")
    op.drop_index("ix_ledger_transfers_credit_account_id", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_debit_account_id", table_name="ledger_transfers")
    op.drop_table("ledger_transfers")
    op.drop_table("ledger_balances")
    op.drop_table("ledger_accounts")
