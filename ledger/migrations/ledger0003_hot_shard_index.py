"""The rows of the hot accounts' shards, found by shard.

The ordered runtime locks, at the start of every batch, the rows of every hot account in the
shard of its partition (`ledger.balances.lock_hot_shard`); without this index that lock read
every balance row of the book.

Revision ID: ledger0003
Revises: ledger0002
"""

import sqlalchemy as sa
from alembic import op

revision = "ledger0003"
down_revision = "ledger0002"
branch_labels = None
depends_on = None

HOT = sa.text("hot")


def upgrade() -> None:
    op.create_index(
        "ledger_balances_hot_shard",
        "ledger_balances",
        ["shard", "account_id"],
        postgresql_where=HOT,
        sqlite_where=HOT,
    )


def downgrade() -> None:
    op.drop_index("ledger_balances_hot_shard", table_name="ledger_balances")
