"""The replay's read cache (`store.read_cache`): what it answers is what the database holds.

It is written through by every state-row, account, transfer and balance write, put back as it
was by a rollback of the transaction or to a savepoint, and never enabled outside the replay; a
replay with it gives the very report a replay without it gives.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import pytest
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import OperationalError

from ledger import (
    AccountFrozen,
    Book,
    Overdraft,
    TransferConflict,
    journal,
)
from ledger.balances import lock_accounts
from ledger.registry import find_accounts
from ledger.tables import accounts, balances
from policy import rows
from policy.config import load_policies
from policy.state import ContractState
from policy.tables import contracts
from store import read_cache, savepoints
from store.prepared import Prepared
from store.savepoints import savepoint
from testbed import workload
from testbed.stories import generate_load
from tests.unit.test_ledger_book import transfer
from workers import replay
from workers.database import make_engine, migrate
from workers.replay import replay_lines

AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def contract(contract_id: str, *, paid_minor: int = 0) -> ContractState:
    return ContractState(
        contract_id=contract_id,
        kind="fixed",
        client_id="u1",
        creator_id="u2",
        currency="USD",
        policy="spectrum",
        client_jurisdiction=None,
        opened_at=AT,
        closed_at=None,
        paid_total_minor=paid_minor,
        refunded_total_minor=0,
        reviews_hidden=False,
    )


@pytest.fixture
def cached(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as conn, read_cache.single_writer(conn), conn.begin():
        yield conn


def test_a_row_written_through_is_what_the_database_then_holds(cached: Connection) -> None:
    assert rows.load(cached, contracts, ContractState, "c1") is None
    rows.insert_row(cached, contracts, contract("c1"))
    assert rows.load(cached, contracts, ContractState, "c1") == contract("c1")
    rows.save_row(cached, contracts, contract("c1", paid_minor=500))
    loaded = rows.load(cached, contracts, ContractState, "c1")
    read_cache.forget(cached)
    from_database = rows.load(cached, contracts, ContractState, "c1")
    assert loaded == from_database == contract("c1", paid_minor=500)


def test_a_rollback_to_a_savepoint_undoes_what_the_block_cached(cached: Connection) -> None:
    rows.insert_row(cached, contracts, contract("c1"))
    with contextlib.suppress(LookupError), savepoint(cached, "test"):
        rows.save_row(cached, contracts, contract("c1", paid_minor=500))
        rows.insert_row(cached, contracts, contract("c2"))
        raise LookupError("undo the block")
    # Without the undo, the cache would still answer the undone writes.
    assert rows.load(cached, contracts, ContractState, "c1") == contract("c1")
    assert rows.load(cached, contracts, ContractState, "c2") is None


def test_a_rollback_of_sqlalchemys_own_savepoint_or_transaction_undoes_too(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.connect() as conn, read_cache.single_writer(conn):
        with conn.begin():
            nested = conn.begin_nested()
            rows.insert_row(conn, contracts, contract("c1"))
            find_accounts(conn, [])  # the namespaces exist
            nested.rollback()
            assert rows.load(conn, contracts, ContractState, "c1") is None
        transaction = conn.begin()
        rows.insert_row(conn, contracts, contract("c2"))
        transaction.rollback()
        with conn.begin():
            assert rows.load(conn, contracts, ContractState, "c2") is None


def test_freezing_an_account_is_seen_through_the_cache(cached: Connection) -> None:
    book = Book(cached)
    book.freeze("user:u1", "USD")
    assert book.is_frozen("user:u1", "USD")
    book.unfreeze("user:u1", "USD")
    assert not book.is_frozen("user:u1", "USD")
    (account,) = find_accounts(cached, [("user:u1", "USD")]).values()
    assert not account.frozen


def test_a_replay_into_a_database_it_does_not_own_caches_nothing(
    sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    promised: list[bool] = []
    real = replay.read_cache.single_writer

    def spy(conn: Connection, *, complete: bool = False) -> contextlib.AbstractContextManager[None]:
        promised.append(complete)
        return real(conn, complete=complete)

    monkeypatch.setattr(replay.read_cache, "single_writer", spy)
    replay_lines(sqlite_engine, list(workload.lines(30)), load_policies())
    assert promised == []
    # Its own, but holding the rows of the replay before: cached, not known to be complete.
    replay_lines(
        sqlite_engine, list(workload.lines(30, prefix="o")), load_policies(), own_database=True
    )
    assert promised == [False]
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    migrate(fresh)
    replay_lines(fresh, list(workload.lines(30)), load_policies(), own_database=True)
    fresh.dispose()
    assert promised == [False, True]


def test_without_single_writer_nothing_is_cached(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert read_cache.namespace(conn, rows.ROWS_CACHE) is None
        with read_cache.single_writer(conn):
            assert read_cache.namespace(conn, rows.ROWS_CACHE) == {}
        assert read_cache.namespace(conn, rows.ROWS_CACHE) is None


def _replayed(folder: Path, name: str, lines: list[str], *, own: bool) -> dict[str, object]:
    engine = make_engine(f"sqlite:///{folder / name}")
    migrate(engine)
    try:
        return replay_lines(engine, lines, load_policies(), own_database=own).as_json()
    finally:
        engine.dispose()


def test_a_replay_of_its_own_database_reports_what_a_careful_one_does(tmp_path: Path) -> None:
    # Its own database: reads cached, no savepoint an event. Not its own: neither.
    # The bench's mix, and the fault runs' stories (withdrawals, points, chargebacks, add-ons),
    # whose withdrawal handler rolls back a savepoint of SQLAlchemy's own.
    lines = list(workload.lines(1_500)) + list(generate_load(200, 20, seed=4).causal_lines())
    envelopes = [json.loads(line) for line in lines]
    # Rejections roll back to the event's savepoint: funding of an unknown contract, work
    # started on an unknown milestone; and a duplicate.
    orphan = next(e for e in envelopes if e["type"] == "milestone.funded")
    orphan = {**orphan, "event_id": "orphan-1", "data": {**orphan["data"], "contract_id": "nope"}}
    stray = next(e for e in envelopes if e["type"] == "work.started")
    stray = {**stray, "event_id": "stray-1", "data": {**stray["data"], "milestone_id": "nope"}}
    lines[200:200] = [json.dumps(orphan), json.dumps(stray), lines[5]]

    with_cache = _replayed(tmp_path, "cached.sqlite", lines, own=True)
    without_cache = _replayed(tmp_path, "plain.sqlite", lines, own=False)

    assert with_cache == without_cache
    rejected = with_cache["rejections"]
    assert isinstance(rejected, list)
    assert {r["event_id"] for r in rejected if r["reason"] == "unknown_subject"} >= {
        "orphan-1",
        "stray-1",
    }


def test_an_unknown_subject_mid_batch_is_rejected_as_if_each_event_committed_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The batch applies events without a savepoint each and, at an unknown subject, rolls back
    # and applies its earlier events again: a batch of one event never has any to redo.
    lines = list(generate_load(200, 20, seed=4).causal_lines())
    envelopes = [json.loads(line) for line in lines]
    funded = [e for e in envelopes if e["type"] == "milestone.funded"]
    for number, envelope in enumerate(funded[:5]):
        orphan = {**envelope, "event_id": f"orphan-{number}"}
        orphan["data"] = {**envelope["data"], "contract_id": f"nope-{number}"}
        lines.insert(50 + 97 * number, json.dumps(orphan))

    batched = _replayed(tmp_path, "batched.sqlite", lines, own=True)
    monkeypatch.setattr(replay, "COMMIT_EVERY", 1)
    alone = _replayed(tmp_path, "alone.sqlite", lines, own=True)

    assert batched == alone
    rejected = batched["rejections"]
    assert isinstance(rejected, list)
    assert {r["event_id"] for r in rejected} >= {f"orphan-{number}" for number in range(5)}


@pytest.fixture
def complete(sqlite_engine: Engine) -> Iterator[Connection]:
    with (
        sqlite_engine.connect() as conn,
        read_cache.single_writer(conn, complete=True),
        conn.begin(),
    ):
        yield conn


def _selects(conn: Connection) -> list[str]:
    """The SELECT statements the driver runs on `conn` from now on."""
    seen: list[str] = []
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.set_trace_callback(
        lambda sql: seen.append(sql) if sql.lstrip().upper().startswith("SELECT") else None
    )
    return seen


def test_a_complete_cache_answers_not_there_without_asking(complete: Connection) -> None:
    selects = _selects(complete)
    assert rows.load(complete, contracts, ContractState, "c1") is None
    assert find_accounts(complete, [("user:u1", "USD")]) == {}
    assert selects == []
    # Without `complete` the same questions go to the database.
    read_cache.forget(complete)
    assert rows.load(complete, contracts, ContractState, "c1") is None
    assert find_accounts(complete, [("user:u1", "USD")]) == {}
    assert len(selects) == 2


def test_a_rollback_to_a_savepoint_puts_the_cache_back_and_keeps_it_complete(
    complete: Connection,
) -> None:
    rows.insert_row(complete, contracts, contract("c1"))
    with contextlib.suppress(LookupError), savepoint(complete, "test"):
        rows.save_row(complete, contracts, contract("c1", paid_minor=500))
        rows.insert_row(complete, contracts, contract("c2"))
        with complete.begin_nested():
            rows.insert_row(complete, contracts, contract("c3"))
        raise LookupError("undo the block")
    assert read_cache.is_complete(complete)
    selects = _selects(complete)
    assert rows.load(complete, contracts, ContractState, "c1") == contract("c1")
    assert rows.load(complete, contracts, ContractState, "c2") is None
    assert rows.load(complete, contracts, ContractState, "c3") is None
    assert selects == []
    # What the database holds says the same.
    read_cache.forget(complete)
    assert rows.load(complete, contracts, ContractState, "c1") == contract("c1")
    assert rows.load(complete, contracts, ContractState, "c2") is None


def test_a_released_savepoint_is_undone_with_the_transaction_around_it(
    sqlite_engine: Engine,
) -> None:
    with sqlite_engine.connect() as conn, read_cache.single_writer(conn, complete=True):
        with conn.begin():
            rows.insert_row(conn, contracts, contract("c1"))
        transaction = conn.begin()
        with savepoint(conn, "kept"):
            rows.save_row(conn, contracts, contract("c1", paid_minor=500))
            rows.insert_row(conn, contracts, contract("c2"))
        transaction.rollback()
        with conn.begin():
            assert read_cache.is_complete(conn)
            assert rows.load(conn, contracts, ContractState, "c1") == contract("c1")
            assert rows.load(conn, contracts, ContractState, "c2") is None


def _same_as_the_database(conn: Connection, names: list[str]) -> None:
    """The cached accounts and what `lock_accounts` reads are what the database holds."""
    cached = find_accounts(conn, [(name, "USD") for name in names])
    stored = conn.execute(
        select(accounts.c.name, accounts.c.id, accounts.c.frozen).where(accounts.c.name.in_(names))
    ).all()
    assert {key[0]: (a.id, a.frozen) for key, a in cached.items()} == {
        name: (account_id, bool(frozen)) for name, account_id, frozen in stored
    }
    available = balances.c.posted_credits - balances.c.posted_debits - balances.c.pending_debits
    ids = [account.id for account in cached.values()]
    held = dict(
        conn.execute(
            select(balances.c.account_id, available).where(balances.c.account_id.in_(ids))
        ).all()
    )
    assert lock_accounts(conn, cached.values()).available == held


def test_a_freeze_undone_by_a_savepoint_is_undone_in_the_cache(complete: Connection) -> None:
    book = Book(complete)
    book.post([transfer("t1", "external:card", "user:u1", 1_000)])
    with contextlib.suppress(LookupError), savepoint(complete, "test"):
        book.freeze("user:u1", "USD")
        assert book.is_frozen("user:u1", "USD")
        book.post([transfer("t2", "external:card", "user:u2", 10)])
        raise LookupError("undo the freeze")
    (account,) = find_accounts(complete, [("user:u1", "USD")]).values()
    assert not account.frozen
    _same_as_the_database(complete, ["user:u1", "user:u2"])
    book.post([transfer("t3", "user:u1", "user:u2", 400)])
    book.freeze("user:u1", "USD")
    with pytest.raises(AccountFrozen):
        book.post([transfer("t4", "user:u1", "user:u2", 100)])
    _same_as_the_database(complete, ["user:u1", "user:u2"])


def test_movements_undone_by_any_rollback_are_undone_in_the_cache(complete: Connection) -> None:
    book = Book(complete)
    book.post([transfer("t1", "external:card", "escrow:m1", 1_000)])
    book.hold(transfer("h1", "escrow:m1", "user:u2", 300))
    book.hold(transfer("h2", "escrow:m1", "user:u2", 200))
    names = ["escrow:m1", "user:u2"]
    # A hold in SQLAlchemy's own savepoint, as the withdrawal handler holds, rolled back.
    nested = complete.begin_nested()
    book.hold(transfer("h3", "escrow:m1", "user:u2", 100))
    nested.rollback()
    _same_as_the_database(complete, names)
    # Moves in our savepoint, with one of SQLAlchemy's left open inside it by an error.
    with contextlib.suppress(LookupError), savepoint(complete, "test"):
        book.post_pending("h1", transfer_id="h1-p", event_id="e1", occurred_at=AT)
        complete.begin_nested()
        book.void_pending("h2", transfer_id="h2-v", event_id="e2", occurred_at=AT)
        raise LookupError("undo the block")
    _same_as_the_database(complete, names)
    book.void_pending("h2", transfer_id="h2-v", event_id="e2", occurred_at=AT)
    book.post_pending("h1", transfer_id="h1-p", event_id="e1", occurred_at=AT, amount_minor=120)
    _same_as_the_database(complete, names)
    assert read_cache.is_complete(complete)
    with pytest.raises(Overdraft):
        book.post([transfer("t2", "escrow:m1", "user:u2", 881)])


def test_a_transfer_id_never_recorded_is_not_looked_for(complete: Connection) -> None:
    book = Book(complete)
    book.post([transfer("t1", "external:card", "user:u1", 100)])
    selects = _selects(complete)
    assert journal.recorded(complete, ["t2", "t3"]) == {}
    assert selects == []
    assert set(journal.recorded(complete, ["t1", "t2"])) == {"t1"}
    assert len(selects) == 1


def test_a_failed_rollback_to_a_savepoint_forgets_everything(complete: Connection) -> None:
    rows.insert_row(complete, contracts, contract("c1"))
    opening, _, releasing = savepoints._statements("broken")
    nowhere = Prepared(text("ROLLBACK TO SAVEPOINT nowhere"))
    with (
        patch.dict(savepoints._BY_NAME, {"broken": (opening, nowhere, releasing)}),
        pytest.raises(OperationalError),
        savepoint(complete, "broken"),
    ):
        rows.insert_row(complete, contracts, contract("c2"))
        raise LookupError("undo the block")
    # The database still holds c2: a cache that still knew every row would say it does not.
    assert not read_cache.is_complete(complete)
    assert rows.load(complete, contracts, ContractState, "c2") == contract("c2")


def test_a_failed_rollback_of_sqlalchemys_own_savepoint_forgets_everything(
    complete: Connection, sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its event fires before the statement: the failure is heard through `handle_error`.
    def roll_back_to_nowhere(conn: Connection, _name: str) -> None:
        conn.execute(text("ROLLBACK TO SAVEPOINT nowhere"))

    rows.insert_row(complete, contracts, contract("c1"))
    nested = complete.begin_nested()
    rows.insert_row(complete, contracts, contract("c2"))
    monkeypatch.setattr(sqlite_engine.dialect, "do_rollback_to_savepoint", roll_back_to_nowhere)
    with pytest.raises(OperationalError):
        nested.rollback()
    monkeypatch.undo()
    assert not read_cache.is_complete(complete)
    assert rows.load(complete, contracts, ContractState, "c2") == contract("c2")


def test_a_failed_commit_forgets_everything(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_dbapi_connection: object) -> None:
        raise OperationalError("COMMIT", {}, Exception("disk full"))

    with sqlite_engine.connect() as conn, read_cache.single_writer(conn, complete=True):
        batch = replay._Batch(conn, load_policies(), bare=True)
        rows.insert_row(conn, contracts, contract("c1"))
        monkeypatch.setattr(sqlite_engine.dialect, "do_commit", refuse)
        with pytest.raises(OperationalError):
            batch.commit()
        assert not read_cache.is_complete(conn)
        assert rows.ROWS_CACHE not in conn.info["recourse.read_cache"].namespaces


def test_a_namespace_refuses_changes_it_could_not_undo(complete: Connection) -> None:
    cached = read_cache.namespace(complete, "test")
    assert cached is not None
    cached["a"] = 1
    for change in (
        lambda: cached.setdefault("b", 2),
        lambda: cached.update({"b": 2}),
        cached.popitem,
        cached.clear,
        lambda: cached.__delitem__("a"),
    ):
        with pytest.raises(TypeError):
            change()
    with pytest.raises(KeyError):
        cached.pop("b")
    assert cached.pop("b", None) is None
    assert cached == {"a": 1}


def test_the_cached_balances_are_the_database_balances(
    complete: Connection, sqlite_engine: Engine
) -> None:
    book = Book(complete)
    book.post([transfer("t1", "external:card", "escrow:m1", 1_000)])
    book.hold(transfer("h1", "escrow:m1", "user:u2", 300))
    book.post(
        [transfer("t2", "escrow:m1", "user:u2", 200), transfer("t3", "user:u2", "user:u3", 50)]
    )
    book.post_pending("h1", transfer_id="h1-post", event_id="e", occurred_at=AT, amount_minor=100)
    # A second copy of a transfer is a no-op, a conflicting one is refused, as without a cache.
    book.post([transfer("t2", "escrow:m1", "user:u2", 200)])
    with pytest.raises(TransferConflict):
        book.post([transfer("t2", "escrow:m1", "user:u2", 201)])
    # The escrow may not go negative: the check reads the cached balance.
    with pytest.raises(Overdraft):
        book.post([transfer("t4", "escrow:m1", "user:u2", 701)])
    book.post([transfer("t5", "escrow:m1", "user:u2", 700)])
    keys = [("escrow:m1", "USD"), ("user:u2", "USD"), ("user:u3", "USD")]
    touched = list(find_accounts(complete, keys).values())
    from_cache = lock_accounts(complete, touched)
    complete.commit()
    with sqlite_engine.connect() as plain, plain.begin():
        from_database = lock_accounts(plain, touched)
    assert from_cache == from_database
    assert sorted(from_cache.available.values()) == [0, 50, 950]


def test_a_replay_of_a_fresh_file_knows_every_row_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Rejections roll back to savepoints and batches roll back whole: the caches follow, and
    # nothing makes them forget.
    lines = list(generate_load(200, 20, seed=4).causal_lines())
    envelopes = [json.loads(line) for line in lines]
    funded = next(e for e in envelopes if e["type"] == "milestone.funded")
    orphan = {**funded, "event_id": "orphan-1", "data": {**funded["data"], "contract_id": "nope"}}
    lines[120:120] = [json.dumps(orphan)]
    forgotten: list[Connection] = []
    monkeypatch.setattr(read_cache, "forget", forgotten.append)
    knowing = _replayed(tmp_path, "knowing.sqlite", lines, own=True)
    assert forgotten == []
    monkeypatch.undo()
    careful = _replayed(tmp_path, "careful.sqlite", lines, own=False)
    assert knowing == careful
