"""The dispute queue's indexes: keyset pages in (opened_at, dispute_id) order.

The console's queue (`workers.operator.disputes.dispute_queue`) reads disputes oldest first,
one status or all, from the (opened_at, dispute_id) of the page before. With an index on
(status, opened_at) alone PostgreSQL had to sort each page again by dispute_id and filter the
cursor's row comparison row by row; with dispute_id in the index the cursor is an index
condition and the rows come in page order (bench/console_queue.py, docs/performance.md).

Revision ID: policy0004
Revises: policy0003
"""

from alembic import op

revision = "policy0004"
down_revision = "policy0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("disputes_open_by_age", table_name="disputes")
    op.create_index("disputes_queue", "disputes", ["status", "opened_at", "dispute_id"])
    op.create_index("disputes_by_age", "disputes", ["opened_at", "dispute_id"])


def downgrade() -> None:
    op.drop_index("disputes_by_age", table_name="disputes")
    op.drop_index("disputes_queue", table_name="disputes")
    op.create_index("disputes_open_by_age", "disputes", ["status", "opened_at"])
