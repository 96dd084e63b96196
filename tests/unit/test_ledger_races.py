"""The book's race guards (`ledger.races`): where other transactions write, a movement that met
a racing copy of itself on the unique index is undone and tried once more; alone, it runs as
it is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from ledger.races import retry_in_savepoint, run_alone


def _collision() -> IntegrityError:
    return IntegrityError("INSERT INTO transfers", {}, Exception("UNIQUE constraint failed"))


@pytest.fixture
def conn(sqlite_engine: Engine) -> Iterator[Connection]:
    with sqlite_engine.connect() as connection:
        connection.execute(text("CREATE TABLE written (n INTEGER)"))
        yield connection


def _written(conn: Connection) -> list[int]:
    return [row.n for row in conn.execute(text("SELECT n FROM written ORDER BY n"))]


def test_a_collision_undoes_the_first_pass_and_the_second_pass_stays(conn: Connection) -> None:
    passes: list[int] = []

    def work() -> None:
        passes.append(len(passes) + 1)
        conn.execute(text("INSERT INTO written VALUES (:n)"), {"n": len(passes)})
        if len(passes) == 1:
            raise _collision()

    retry_in_savepoint(conn, work)

    assert passes == [1, 2]
    assert _written(conn) == [2]


def test_a_second_collision_is_raised(conn: Connection) -> None:
    passes: list[int] = []

    def work() -> None:
        passes.append(1)
        raise _collision()

    with pytest.raises(IntegrityError):
        retry_in_savepoint(conn, work)
    assert len(passes) == 2


def test_alone_a_movement_runs_once_and_is_not_undone_by_its_error(conn: Connection) -> None:
    passes: list[int] = []

    def work() -> None:
        passes.append(1)
        conn.execute(text("INSERT INTO written VALUES (1)"))
        raise _collision()

    with pytest.raises(IntegrityError):
        run_alone(conn, work)
    # No savepoint: what the pass wrote stays until the caller rolls back.
    assert passes == [1]
    assert _written(conn) == [1]
