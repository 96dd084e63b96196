"""Partitions: the unit of the intake's order and of its locks.

Each ordering key belongs to one of `PARTITIONS` partitions; one worker thread at a time drains
a partition, in log order. The number is fixed: a key's pending events must all be in one
partition, so changing it would need every pending event drained first. 64 leaves room for
tens of threads across processes while a partition's batch still gathers several events.
"""

from __future__ import annotations

import zlib
from typing import Final

PARTITIONS: Final = 64


def partition_of(ordering_key: str) -> int:
    """The partition of a key: the same in every process and release (CRC-32, not `hash`)."""
    return zlib.crc32(ordering_key.encode("utf-8")) % PARTITIONS
