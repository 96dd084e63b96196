"""Partitions: the unit of the intake's order and of its locks.

Each ordering key belongs to one of `PARTITIONS` partitions; one worker thread at a time drains
a partition, in log order, and its postings to hot accounts go to the shard of the same number
(`ledger.balances.posting_shard_scope`). The number is fixed: a key's pending events must all be
in one partition, so changing it would need every pending event drained first. 16, the number
of hot-account shards, lets 16 threads apply at once, while a drain under a live load still
gathers several events a transaction (with 64, most drains applied one event: the fixed cost of
a drain, a dozen statements, then went to every event).
"""

from __future__ import annotations

import zlib
from typing import Final

PARTITIONS: Final = 16


def partition_of(ordering_key: str) -> int:
    """The partition of a key: the same in every process and release (CRC-32, not `hash`)."""
    return zlib.crc32(ordering_key.encode("utf-8")) % PARTITIONS
