"""What the store refuses on its own account, whichever package's table it writes."""

from __future__ import annotations


class SumOutOfRange(Exception):
    """A running sum would pass what the embedded store (SQLite) keeps exactly, 2^63 - 1.

    Only SQLite raises it: on PostgreSQL the sums are NUMERIC(38,0), which no sequence of
    valid events fills (`store.columns.RunningSum`). It may come after some of the
    transaction's rows were written (the limit is checked as each row is bound or updated):
    the caller's transaction must be rolled back, as the workers and the replay do with any
    error a handler raises.
    """
