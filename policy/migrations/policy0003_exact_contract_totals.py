"""A contract's running totals (paid, refunded) that cannot overflow.

They sum every payment and refund of a contract, unbounded in number; as BIGINT some 9,223
payments of the largest amount (10^15 minor units) passed 2^63 - 1 and every later event of
the contract failed. On PostgreSQL they become NUMERIC(38,0) (`store.columns.RunningSum`).
On SQLite they stay INTEGER: the engine adds them in Python and `RunningSum` refuses a total
past 2^63 - 1 with SumOutOfRange before it is written.

Revision ID: policy0003
Revises: policy0002
"""

import sqlalchemy as sa
from alembic import op

revision = "policy0003"
down_revision = "policy0002"
branch_labels = None
depends_on = None

_TOTALS = ("paid_total_minor", "refunded_total_minor")


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name in _TOTALS:
            op.alter_column(
                "contracts",
                name,
                type_=sa.Numeric(38, 0),
                existing_type=sa.BigInteger(),
                existing_nullable=False,
                existing_server_default="0",
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for name in _TOTALS:
            op.alter_column(
                "contracts",
                name,
                type_=sa.BigInteger(),
                existing_type=sa.Numeric(38, 0),
                existing_nullable=False,
                existing_server_default="0",
            )
