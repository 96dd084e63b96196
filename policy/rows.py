"""Plain state objects <-> table rows: a dataclass whose fields are a table's columns.

Rules work on frozen dataclasses (pure, testable without a database); handlers load them with
a row lock and write the changed copy back. One generic mapping serves every table.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Connection, Select, Table, bindparam, insert, select, update

from store import read_cache
from store.prepared import Prepared


class StateRow(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


RowT = TypeVar("RowT", bound=StateRow)


_KEYS: dict[Table, str] = {}


def _key(table: Table) -> str:
    # Looked up for every row written: the primary key's name, found once per table.
    name = _KEYS.get(table)
    if name is None:
        (column,) = table.primary_key.columns
        name = _KEYS[table] = column.name
    return name


ROWS_CACHE = "policy.rows"


def load(
    conn: Connection, table: Table, cls: type[RowT], key: str, *, lock: bool = False
) -> RowT | None:
    """The row with primary key `key` as a `cls`, locked FOR UPDATE when `lock` (PostgreSQL)."""
    cached = read_cache.namespace(conn, ROWS_CACHE)
    if cached is not None:
        # A single writer (the replay): the row is what this connection last read or wrote.
        # Absence is cached too, since every state row is inserted through `insert_row`.
        hit = cached.get((table.name, key), _MISS)
        if hit is None or type(hit) is cls:
            return hit
        if hit is _MISS and read_cache.is_complete(conn):
            # Every row of the database went in through `insert_row`, which caches it.
            cached[(table.name, key)] = None
            return None
    row = _load_statement(table, cls, lock).first(conn, {"key": key})
    # The columns are selected in the order of the class's fields.
    found = cls(*row) if row is not None else None
    if cached is not None:
        cached[(table.name, key)] = found
    return found


_MISS = object()


def _remember(conn: Connection, table: Table, obj: StateRow, *, inserted: bool) -> None:
    cached = read_cache.namespace(conn, ROWS_CACHE)
    if cached is None:
        return
    key = (table.name, getattr(obj, _key(table)))
    # State rows are frozen dataclasses holding UTC times and plain values: the object written
    # is the value read back. An update is only cached over a row known to exist, since the
    # UPDATE of a missing row writes nothing.
    if inserted or cached.get(key) is not None:
        cached[key] = obj
    else:
        cached.pop(key, None)


def relock(conn: Connection, table: Table, cls: type[RowT], key: str) -> RowT:
    """Load again, under its row lock, a row just seen without one (found by its key before its
    contract was locked). State rows are never deleted, so a missing row is a broken invariant,
    raised as such rather than asserted (an assert vanishes under `python -O`)."""
    found = load(conn, table, cls, key, lock=True)
    if found is None:
        raise RuntimeError(f"{table.name} row {key!r} disappeared while its contract was locked")
    return found


# Statements are prepared once per table and state class (`store.prepared`): SQLAlchemy's
# per-statement work costs more than running the statement on SQLite, and every event loads and
# saves a few rows.
_LOADS: dict[tuple[Table, type[Any], bool], Prepared] = {}
_SAVES: dict[tuple[Table, type[Any]], _Save] = {}
_INSERTS: dict[Table, Prepared] = {}
_MATCHING: dict[tuple[Table, type[Any], tuple[str, ...]], Prepared] = {}


def _load_statement(table: Table, cls: type[Any], lock: bool) -> Prepared:
    cached = _LOADS.get((table, cls, lock))
    if cached is not None:
        return cached
    statement: Select[Any] = select(*(table.c[name] for name in _names(cls))).where(
        table.c[_key(table)] == bindparam("key")
    )
    if lock:
        statement = statement.with_for_update()
    prepared = _LOADS[(table, cls, lock)] = Prepared(statement)
    return prepared


def load_matching(conn: Connection, table: Table, cls: type[RowT], **equal_to: Any) -> list[RowT]:
    """Every row whose columns named in `equal_to` hold those values, in primary key order."""
    if any(value is None for value in equal_to.values()):
        # `= NULL` matches nothing in SQL; no caller needs IS NULL, so refuse rather than
        # silently find no rows.
        raise ValueError(f"load_matching compares with values, not None: {sorted(equal_to)}")
    columns = tuple(sorted(equal_to))
    statement = _MATCHING.get((table, cls, columns))
    if statement is None:
        statement = _MATCHING[(table, cls, columns)] = Prepared(
            select(*(table.c[name] for name in _names(cls)))
            .where(*(table.c[name] == bindparam(f"match_{name}") for name in columns))
            .order_by(table.c[_key(table)])
        )
    found = statement.rows(conn, {f"match_{name}": value for name, value in equal_to.items()})
    return [cls(*row) for row in found]


def insert_row(conn: Connection, table: Table, obj: StateRow) -> None:
    statement = _INSERTS.get(table)
    if statement is None:
        statement = _INSERTS[table] = Prepared(insert(table))
    statement.write(conn, _fields(obj))
    _remember(conn, table, obj, inserted=True)


def _fields(obj: StateRow) -> dict[str, Any]:
    # A shallow copy: dataclasses.asdict deep-copies every value, and state rows hold plain
    # values only.
    return {name: getattr(obj, name) for name in _names(type(obj))}


_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _names(cls: type[Any]) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(field.name for field in dataclasses.fields(cls))
    return names


def save_row(conn: Connection, table: Table, obj: StateRow) -> None:
    """Write every field of `obj` back to its row (found by primary key)."""
    plan = _SAVES.get((table, type(obj)))
    if plan is None:
        key = _key(table)
        names = tuple(name for name in _names(type(obj)) if name != key)
        # Bound names differ from the column names, which SQLAlchemy reserves for SET.
        plan = _SAVES[(table, type(obj))] = _Save(
            key=key,
            fields=tuple((name, f"new_{name}") for name in names),
            statement=Prepared(
                update(table)
                .where(table.c[key] == bindparam("row_key"))
                .values({name: bindparam(f"new_{name}") for name in names})
            ),
        )
    params = {param: getattr(obj, name) for name, param in plan.fields}
    params["row_key"] = getattr(obj, plan.key)
    plan.statement.write(conn, params)
    _remember(conn, table, obj, inserted=False)


@dataclasses.dataclass(frozen=True, slots=True)
class _Save:
    """How a state class's row is written back: its key, each field with its bound name."""

    key: str
    fields: tuple[tuple[str, str], ...]
    statement: Prepared
