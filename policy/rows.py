"""Plain state objects <-> table rows: a dataclass whose fields are a table's columns.

Rules work on frozen dataclasses (pure, testable without a database); handlers load them with
a row lock and write the changed copy back. One generic mapping serves every table.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy import Connection, Table, insert, select, update


class StateRow(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]


RowT = TypeVar("RowT", bound=StateRow)


def _key(table: Table) -> str:
    (column,) = table.primary_key.columns
    return column.name


def load(
    conn: Connection, table: Table, cls: type[RowT], key: str, *, lock: bool = False
) -> RowT | None:
    """The row with primary key `key` as a `cls`, locked FOR UPDATE when `lock` (PostgreSQL)."""
    names = [field.name for field in dataclasses.fields(cls)]
    query = select(*(table.c[name] for name in names)).where(table.c[_key(table)] == key)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return cls(**row) if row is not None else None


def load_where(conn: Connection, table: Table, cls: type[RowT], *criteria: Any) -> list[RowT]:
    names = [field.name for field in dataclasses.fields(cls)]
    query = select(*(table.c[name] for name in names)).where(*criteria)
    return [cls(**row) for row in conn.execute(query).mappings()]


def insert_row(conn: Connection, table: Table, obj: StateRow) -> None:
    conn.execute(insert(table).values(**dataclasses.asdict(obj)))


def save_row(conn: Connection, table: Table, obj: StateRow) -> None:
    """Write every field of `obj` back to its row (found by primary key)."""
    values = dataclasses.asdict(obj)
    key = _key(table)
    conn.execute(update(table).where(table.c[key] == values.pop(key)).values(**values))
