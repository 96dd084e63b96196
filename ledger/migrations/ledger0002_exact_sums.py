"""Balance totals that cannot overflow.

A balance row's four totals grow with every posting. As BIGINT, some 9,223 postings of the
largest amount (10^15 minor units) to one row passed 2^63 - 1, and every later posting to the
account failed. On PostgreSQL they become NUMERIC(38,0): exact, and 10^38 is 10^23 largest
postings to one row, beyond any history (`store.columns.RunningSum`). Amounts stay BIGINT.

SQLite has no wider exact integer, and its arithmetic turns a sum past 2^63 - 1 into an
inexact REAL without a word. There, triggers refuse any balance row whose total is not an
integer after an insert or update, so the statement fails (the ledger raises SumOutOfRange)
instead of storing a rounded total: the embedded store is bounded, not inexact.

Downgrading on PostgreSQL fails if a total no longer fits a BIGINT, rather than losing it.

Revision ID: ledger0002
Revises: ledger0001
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger0002"
down_revision = "ledger0001"
branch_labels = None
depends_on = None

_TOTALS = ("posted_debits", "posted_credits", "pending_debits", "pending_credits")

# The message `ledger.balances` recognises; RAISE(ABORT) fails the statement only.
_NOT_INTEGER = " OR ".join(f"typeof(NEW.{name}) <> 'integer'" for name in _TOTALS)
_SQLITE_TRIGGERS = {
    f"ledger_balances_exact_{operation.lower()}": f"""
    CREATE TRIGGER ledger_balances_exact_{operation.lower()}
        AFTER {operation} ON ledger_balances
        FOR EACH ROW WHEN {_NOT_INTEGER}
    BEGIN
        SELECT RAISE(ABORT, 'ledger_balances_sum_out_of_range');
    END
    """
    for operation in ("INSERT", "UPDATE")
}


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        for name in _TOTALS:
            op.alter_column(
                "ledger_balances",
                name,
                type_=sa.Numeric(38, 0),
                existing_type=sa.BigInteger(),
                existing_nullable=False,
            )
    elif dialect == "sqlite":
        for statement in _SQLITE_TRIGGERS.values():
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        for name in _TOTALS:
            op.alter_column(
                "ledger_balances",
                name,
                type_=sa.BigInteger(),
                existing_type=sa.Numeric(38, 0),
                existing_nullable=False,
            )
    elif dialect == "sqlite":
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
