"""The applied steps: what took effect, numbered in the order it did (MESSAGES.md, Ordering 4)."""

from __future__ import annotations

import json
from collections.abc import Collection

from sqlalchemy import Connection, insert

from workers.intake.tables import applied_steps


def record_step(
    conn: Connection, log_seq: int, action: str, contract_ids: Collection[str] = ()
) -> None:
    """Number a step inside its own transaction, after the row locks it took: two steps that
    wrote one row are numbered in the order they wrote it (the second waited for the first's
    commit), so applying the steps in number order on a scratch store writes the same books."""
    steps = Steps()
    steps.add(log_seq, action, contract_ids)
    steps.write(conn)


class Steps:
    """The steps of one drain transaction, written together just before it commits.

    Numbered then, they still follow the order their rows were written in: a transaction that
    waits for another's lock takes its numbers after that one's commit, and one transaction's
    steps keep their own order."""

    def __init__(self) -> None:
        self._rows: list[dict[str, object]] = []

    def add(self, log_seq: int, action: str, contract_ids: Collection[str] = ()) -> None:
        self._rows.append(
            {"log_seq": log_seq, "action": action, "contract_ids": json.dumps(sorted(contract_ids))}
        )

    def write(self, conn: Connection) -> None:
        if self._rows:
            conn.execute(insert(applied_steps), self._rows)
            self._rows = []
