"""Each state dataclass of `policy.state` and its table in `policy.tables` describe one row:
`policy.rows` maps them by field name, so a field and a column that drift apart would only
fail when a handler first loads or saves that row.

A state class's table is the one whose primary key is the class's first field (`contract_id`
for `ContractState`): nothing pairs them but their names, as in `policy.rows`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
from typing import get_type_hints

import pytest
from sqlalchemy import Table

from policy import state
from policy.tables import metadata

STATE_CLASSES = [
    cls
    for _, cls in inspect.getmembers(state, inspect.isclass)
    if dataclasses.is_dataclass(cls) and cls.__module__ == state.__name__
]


def table_of(cls: type) -> Table:
    key = dataclasses.fields(cls)[0].name
    (table,) = [
        table
        for table in metadata.tables.values()
        if [column.name for column in table.primary_key.columns] == [key]
    ]
    return table


def test_every_state_class_is_found() -> None:
    assert len(STATE_CLASSES) >= 11


@pytest.mark.parametrize("cls", STATE_CLASSES, ids=lambda cls: cls.__name__)
def test_the_fields_are_the_columns(cls: type) -> None:
    table = table_of(cls)
    fields = [field.name for field in dataclasses.fields(cls)]
    assert sorted(fields) == sorted(table.columns.keys())


@pytest.mark.parametrize("cls", STATE_CLASSES, ids=lambda cls: cls.__name__)
def test_a_field_may_be_none_exactly_where_its_column_is_nullable(cls: type) -> None:
    table = table_of(cls)
    hints = get_type_hints(cls)
    optional = {
        name
        for name, hint in hints.items()
        if isinstance(hint, types.UnionType) and type(None) in hint.__args__
    }
    nullable = {column.name for column in table.columns if column.nullable}
    assert optional == nullable & set(hints)
