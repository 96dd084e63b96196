"""`recourse verify`: apply a database's steps again, in the order they took effect, on a scratch
store, and compare the books (MESSAGES.md, Ordering 4).

The steps are the `applied_steps` of the ordered intake: each event applied (rejections and
duplicates included), each tick with the contracts it left to parked keys, and each of those
contracts' deadlines fired later. Dead letters touched nothing and are not steps. The scratch
store is a throwaway SQLite file, so verifying a PostgreSQL database also checks that the same
handlers give the same books on the other backend.

The comparison covers every balance (by account and currency) and every transfer (its id, kind,
accounts, amount, currency, code, cause and time). An event the scratch store refuses where the
original applied it is a difference too.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import aliased

from ledger import Book
from ledger.tables import accounts, transfers
from messages import parse_event
from messages.inbound import DeadlineTickEvent
from policy.apply import apply_event
from policy.config import PolicySet
from policy.context import DeadlineScope
from store.savepoints import savepoint
from workers.database import make_throwaway_engine, migrate
from workers.intake.drain import fire_contract_deadlines
from workers.intake.tables import applied_steps, event_log

COMMIT_EVERY = 1000
MAX_SHOWN = 50


@dataclass
class Verification:
    steps: int = 0
    balances_compared: int = 0
    transfers_compared: int = 0
    differences: list[str] = field(default_factory=list)
    differences_total: int = 0

    @property
    def same(self) -> bool:
        return self.differences_total == 0

    def differ(self, line: str) -> None:
        self.differences_total += 1
        if len(self.differences) < MAX_SHOWN:
            self.differences.append(line)

    def as_json(self) -> dict[str, Any]:
        return {
            "same": self.same,
            "steps": self.steps,
            "balances_compared": self.balances_compared,
            "transfers_compared": self.transfers_compared,
            "differences": self.differences,
            "differences_total": self.differences_total,
        }


def steps_to_verify(source: Engine) -> int:
    """How many applied steps `verify` will apply again: its progress bar's total."""
    with source.connect() as conn:
        total: int = conn.execute(select(func.count()).select_from(applied_steps)).scalar_one()
        return total


def verify(
    source: Engine, policies: PolicySet, *, progress: Callable[[int], None] | None = None
) -> Verification:
    """`progress`, when given, is told how many steps were applied again so far."""
    result = Verification()
    with tempfile.TemporaryDirectory(prefix="recourse-verify-") as folder:
        scratch = make_throwaway_engine(Path(folder) / "verify.sqlite")
        try:
            migrate(scratch)
            with source.connect() as original, scratch.connect() as copy:
                _reapply(original, copy, policies, result, progress or (lambda _done: None))
                with original.begin(), copy.begin():
                    _compare_balances(original, copy, result)
                    _compare_transfers(original, copy, result)
        finally:
            scratch.dispose()
    return result


def _steps(conn: Connection) -> Iterator[Any]:
    query = (
        select(
            applied_steps.c.step,
            applied_steps.c.action,
            applied_steps.c.contract_ids,
            event_log.c.seq,
            event_log.c.body,
        )
        .join(event_log, event_log.c.seq == applied_steps.c.log_seq)
        .order_by(applied_steps.c.step)
    )
    with conn.begin():
        yield from conn.execution_options(yield_per=COMMIT_EVERY).execute(query)


def _reapply(
    original: Connection,
    copy: Connection,
    policies: PolicySet,
    result: Verification,
    progress: Callable[[int], None],
) -> None:
    transaction = copy.begin()
    for step in _steps(original):
        result.steps += 1
        progress(result.steps)
        event = parse_event(step.body)
        contract_ids = frozenset(json.loads(step.contract_ids))
        try:
            with savepoint(copy, "recourse_verify"):
                if step.action == "event":
                    apply_event(copy, event, policies)
                elif step.action == "tick":
                    apply_event(
                        copy, event, policies, deadline_scope=DeadlineScope(skip=contract_ids)
                    )
                else:
                    assert isinstance(event, DeadlineTickEvent)
                    for contract_id in sorted(contract_ids):
                        fire_contract_deadlines(copy, policies, contract_id, event)
        except Exception as exc:  # the original applied it: any refusal here is a difference
            result.differ(
                f"step {step.step} ({step.action} {event.type} {event.event_id}): "
                f"could not be applied again: {type(exc).__name__}: {exc}"
            )
        if result.steps % COMMIT_EVERY == 0:
            transaction.commit()
            transaction = copy.begin()
    transaction.commit()


def _compare_balances(original: Connection, copy: Connection, result: Verification) -> None:
    left, right = Book(original).balances(), Book(copy).balances()
    for name in sorted(set(left) | set(right)):
        for currency in sorted(set(left.get(name, {})) | set(right.get(name, {}))):
            result.balances_compared += 1
            have = left.get(name, {}).get(currency, 0)
            again = right.get(name, {}).get(currency, 0)
            if have != again:
                result.differ(
                    f"balance {name} {currency}: {have} in the database, {again} applied again"
                )


def _transfer_rows(conn: Connection) -> dict[str, tuple[Any, ...]]:
    debit, credit = aliased(accounts), aliased(accounts)
    query = (
        select(
            transfers.c.transfer_id,
            transfers.c.kind,
            debit.c.name,
            credit.c.name,
            transfers.c.amount_minor,
            transfers.c.currency,
            transfers.c.code,
            transfers.c.event_id,
            transfers.c.occurred_at,
        )
        .join(debit, debit.c.id == transfers.c.debit_account_id)
        .join(credit, credit.c.id == transfers.c.credit_account_id)
    )
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def _compare_transfers(original: Connection, copy: Connection, result: Verification) -> None:
    left, right = _transfer_rows(original), _transfer_rows(copy)
    for transfer_id in sorted(set(left) | set(right)):
        result.transfers_compared += 1
        have, again = left.get(transfer_id), right.get(transfer_id)
        if have == again:
            continue
        if have is None:
            result.differ(f"transfer {transfer_id}: missing from the database: {again}")
        elif again is None:
            result.differ(f"transfer {transfer_id}: not made again: {have}")
        else:
            result.differ(f"transfer {transfer_id}: {have} in the database, {again} applied again")
