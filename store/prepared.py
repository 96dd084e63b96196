"""Statements compiled once per dialect and run on the driver's cursor: the hot path's SQL.

An event runs about a dozen small statements. Through `Connection.execute` each one costs
SQLAlchemy some 25-40 us of Python (cache key, parameter processing, result set-up, events)
before the driver sees it, several times what SQLite takes to run it. A `Prepared` statement
does that work once: it compiles the Core statement for the connection's dialect, keeps the
SQL text, the order of its parameters and the type processors SQLAlchemy itself would apply
(the UTC datetimes, JSON, booleans), and then hands each execution straight to the DBAPI
cursor of the connection's current transaction.

What that gives up, on purpose and only for these statements: engine events and SQL echo do
not see them. What it keeps: the caller's transaction (the same DBAPI connection; a
connection with no transaction begins one, as `execute` would), SQLAlchemy's exception classes
(a driver error is raised as the `sqlalchemy.exc` error `execute` would raise, so callers that
catch `IntegrityError` or `OperationalError` behave the same), and a lost server invalidates
the connection and every older one in its pool, so the pool never lends them out again.

`write` (and `run_many`) is for a statement whose result nobody reads: inside
`store.pipelining.deferred_writes` on PostgreSQL it is queued in the driver's pipeline instead
of waited for, and `run` and `rows` take every queued write through with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Table, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.expression import Select

from store.pipelining import failure, open_pipeline, pipeline_for_write

Processor = Callable[[Any], Any]
_UNSET = object()


@dataclass(frozen=True, slots=True)
class _Bind:
    name: str
    processor: Processor | None
    default: Any  # a value built into the statement (`.values(result="rejected")`), or _UNSET
    item: tuple[str, int] | None  # (list parameter, index) for one value of an expanding IN


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[_Bind, ...]
    positional: bool
    results: tuple[Processor | None, ...]  # empty when no column needs converting
    # When every parameter comes from the caller as it is (the common case, converted without
    # looking for defaults or list items): their names, and (position, processor) of those
    # that need converting. None otherwise.
    plain: _Plain | None
    # Sent unprepared, so PostgreSQL plans it at each execution (`Prepared(plan_each_time=)`).
    unprepared: bool = False


@dataclass(frozen=True, slots=True)
class _Plain:
    names: tuple[str, ...]
    take: Callable[[Mapping[str, Any]], Any]  # the values in order, in one C call
    converted: tuple[tuple[int, Processor], ...]


class Prepared:
    """One Core statement, compiled once per dialect (and, for an INSERT without values, per
    set of columns given; for an expanding `IN`, per number of values) and executed on the
    driver's cursor."""

    def __init__(self, statement: ClauseElement, *, plan_each_time: bool = False) -> None:
        """`plan_each_time`: on PostgreSQL, never as a server-side prepared statement, so it is
        planned for the tables as they are at each execution. psycopg prepares a statement
        after a few executions, and PostgreSQL then settles on a generic plan costed for the
        tables as they were: for a lookup of a few keys in tables that start empty (a new
        ledger, a benchmark's database) that is a sequential scan, kept while the tables grow,
        until an ANALYZE of them invalidates it. Planning costs some tens of microseconds of
        the server's CPU: only for the lookups of several keys whose plans were seen to go
        bad that way."""
        self._statement = statement
        self._plan_each_time = plan_each_time
        self._bare_insert = _is_bare_insert(statement)
        self._compilers: dict[tuple[str, frozenset[str] | None], _Compiler] = {}
        self._compiled: dict[tuple[str, frozenset[str] | None, tuple[int, ...]], _Compiled] = {}
        # The one text per dialect of a statement with no expanding IN and values of its own
        # (most of them), or per column order of a bare INSERT: found with one lookup.
        self._fixed: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row the statement returns, its values converted as `execute` would."""
        compiled, converted = self._bound(conn, params)
        cursor = _cursor(conn)
        try:
            _run(conn, cursor, compiled, converted)
            try:
                # In pipeline mode the answer (and a queued write's failure) comes here.
                fetched = cursor.fetchall()
            except conn.dialect.loaded_dbapi.Error as error:
                raise failure(conn, cursor, compiled.sql, converted, error) from error
        finally:
            cursor.close()
        if not compiled.results:
            return [tuple(row) for row in fetched]
        return [
            tuple(
                value if process is None else process(value)
                for value, process in zip(row, compiled.results, strict=True)
            )
            for row in fetched
        ]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        found = self.rows(conn, params)
        return found[0] if found else None

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute once; the number of rows it changed."""
        compiled, converted = self._bound(conn, params)
        cursor = _cursor(conn)
        try:
            _run(conn, cursor, compiled, converted)
            pipeline = open_pipeline(conn)
            if pipeline is not None:
                # The row count comes with the answer: have it (and the queued writes') now.
                try:
                    pipeline.sync()
                except conn.dialect.loaded_dbapi.Error as error:
                    raise failure(conn, cursor, compiled.sql, converted, error) from error
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def write(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Execute once, for a statement whose result nobody reads: inside
        `store.pipelining.deferred_writes` on PostgreSQL it is queued, and answered with the
        next statement that needs an answer; elsewhere it runs at once."""
        compiled, converted = self._bound(conn, params)
        pipeline_for_write(conn)
        cursor = _cursor(conn)
        try:
            _run(conn, cursor, compiled, converted)
        finally:
            cursor.close()

    def run_many(self, conn: Connection, many: Sequence[Mapping[str, Any]]) -> None:
        """Execute once per parameter set (all of one shape), in one driver call."""
        if not many:
            return
        compiled = self._for(conn, many[0])
        converted = [_parameters(compiled, params) for params in many]
        # Inside deferred_writes the rows ride the pipeline with no sync of their own.
        pipeline_for_write(conn)
        cursor = _cursor(conn)
        try:
            try:
                cursor.executemany(compiled.sql, converted)
            except conn.dialect.loaded_dbapi.Error as error:
                raise failure(conn, cursor, compiled.sql, converted, error) from error
        finally:
            cursor.close()

    def _bound(self, conn: Connection, params: Mapping[str, Any]) -> tuple[_Compiled, Any]:
        compiled = self._for(conn, params)
        return compiled, _parameters(compiled, params)

    def _for(self, conn: Connection, params: Mapping[str, Any]) -> _Compiled:
        fixed_key = (conn.dialect.name, tuple(params) if self._bare_insert else ())
        fixed = self._fixed.get(fixed_key)
        if fixed is not None:
            return fixed
        dialect = conn.dialect
        # An INSERT with no values of its own compiles to the columns it is given.
        keys = frozenset(params) if self._bare_insert else None
        compiler = self._compilers.get((dialect.name, keys))
        if compiler is None:
            compiler = self._compilers[(dialect.name, keys)] = _Compiler(
                self._statement, dialect, keys
            )
        lengths = tuple(len(params[name]) for name in compiler.expanding)
        found = self._compiled.get((dialect.name, keys, lengths))
        if found is None:
            found = compiler.for_lengths(dict(zip(compiler.expanding, lengths, strict=True)))
            if self._plan_each_time and dialect.name == "postgresql":
                found = replace(found, unprepared=True)
            self._compiled[(dialect.name, keys, lengths)] = found
        if not compiler.expanding:
            self._fixed[fixed_key] = found
        return found


class InsertIfMissing:
    """`INSERT ... ON CONFLICT DO NOTHING` into `table`, prepared for PostgreSQL and SQLite: a
    row whose key is there already (or is being inserted by a transaction this one then waits
    for) inserts nothing. `key` names the unique columns to check; none means any."""

    def __init__(self, table: Table, *, key: Sequence[str] | None = None) -> None:
        self._by_dialect = {
            "postgresql": Prepared(
                postgresql.insert(table).on_conflict_do_nothing(index_elements=key)
            ),
            "sqlite": Prepared(sqlite.insert(table).on_conflict_do_nothing(index_elements=key)),
        }

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Insert one row; 1 if it went in, 0 if its key was there."""
        return self._for(conn).run(conn, params)

    def run_many(self, conn: Connection, many: Sequence[Mapping[str, Any]]) -> None:
        self._for(conn).run_many(conn, many)

    def _for(self, conn: Connection) -> Prepared:
        found = self._by_dialect.get(conn.dialect.name)
        if found is None:
            raise NotImplementedError(
                f"Recourse runs on PostgreSQL and SQLite, not {conn.dialect.name}"
            )
        return found


def _is_bare_insert(statement: ClauseElement) -> bool:
    return bool(
        getattr(statement, "is_insert", False)
        and not getattr(statement, "_values", None)
        and not getattr(statement, "_multi_values", None)
    )


class _Compiler:
    """A statement compiled for one dialect, from which each number of `IN` values gets its
    own SQL text once."""

    def __init__(self, statement: ClauseElement, dialect: Dialect, keys: frozenset[str] | None):
        # On PostgreSQL a bare INSERT into a table with a generated key compiles with a
        # RETURNING of it; the row it returns is simply not read.
        compiled = statement.compile(
            dialect=dialect, column_keys=sorted(keys) if keys is not None else None
        )
        if not isinstance(compiled, SQLCompiler):
            raise TypeError(f"cannot prepare {type(statement).__name__}: not a SQL statement")
        if not compiled.positional and dialect.paramstyle != "pyformat":
            raise TypeError(f"cannot prepare for the {dialect.paramstyle!r} parameter style")
        self._compiled = compiled
        self._dialect = dialect
        self.expanding = tuple(name for name, bind in compiled.binds.items() if bind.expanding)
        self._results: tuple[Processor | None, ...] = ()
        if isinstance(statement, Select):
            processors = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            )
            if any(processors):
                self._results = processors

    def for_lengths(self, lengths: Mapping[str, int]) -> _Compiled:
        compiled, dialect = self._compiled, self._dialect
        sql = compiled.string
        # Each name in the SQL text, and the bind parameter whose type converts its value.
        source: dict[str, BindParameter[Any]] = dict(compiled.binds)
        positions = list(compiled.positiontup or [])
        # Each expanded name: its list parameter and the index of its value in the list.
        expanded_from: dict[str, tuple[str, int]] = {}
        if lengths:
            # Only the lists' lengths shape the text; every other value may be a placeholder.
            placeholders: dict[str, Any] = dict.fromkeys(compiled.binds)
            placeholders.update({name: [None] * length for name, length in lengths.items()})
            state = compiled.construct_expanded_state(placeholders)
            sql = state.statement
            positions = list(state.positiontup or [])
            for original, names in state.parameter_expansion.items():
                for index, name in enumerate(names):
                    expanded_from[name] = (original, index)
        if compiled.positional:
            names = positions
        else:
            candidates = list(source) + list(expanded_from)
            names = [name for name in candidates if f"%({name})s" in sql]
        binds = []
        for name in names:
            item = expanded_from.get(name)
            bind = source[item[0] if item is not None else name]
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if item is not None:
                binds.append(_Bind(name, processor, _UNSET, item))
            else:
                default = _UNSET if bind.required else bind.effective_value
                binds.append(_Bind(name, processor, default, None))
        plain = None
        # `itemgetter` needs a name: a statement without parameters (a savepoint's) takes the
        # general path, which gives it an empty list or dict.
        if binds and all(bind.item is None and bind.default is _UNSET for bind in binds):
            plain_names = tuple(bind.name for bind in binds)
            take = itemgetter(*plain_names)
            plain = _Plain(
                names=plain_names,
                # itemgetter of one name gives the value itself, not a 1-tuple.
                take=take if len(plain_names) > 1 else lambda params: (take(params),),
                converted=tuple(
                    (index, bind.processor)
                    for index, bind in enumerate(binds)
                    if bind.processor is not None
                ),
            )
        return _Compiled(sql, tuple(binds), bool(compiled.positional), self._results, plain)


def _parameters(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    plain = compiled.plain
    if plain is not None:
        try:
            taken = plain.take(params)
        except KeyError as missing:
            raise exc.ArgumentError(f"a value is required for the parameter {missing}") from None
        if plain.converted:
            values = list(taken)
            for index, process in plain.converted:
                values[index] = process(values[index])
            taken = values
        if compiled.positional:
            return taken
        return dict(zip(plain.names, taken, strict=True))
    values = []
    for bind in compiled.binds:
        if bind.item is not None:
            value = params[bind.item[0]][bind.item[1]]
        else:
            value = params.get(bind.name, bind.default)
        if value is _UNSET:
            raise exc.ArgumentError(f"a value is required for the parameter {bind.name!r}")
        values.append(value if bind.processor is None else bind.processor(value))
    if compiled.positional:
        return values
    return {bind.name: value for bind, value in zip(compiled.binds, values, strict=True)}


def _cursor(conn: Connection) -> Any:
    if not conn.in_transaction():
        # `execute` would begin one here (autobegin): the caller commits it.
        conn.begin()
    dbapi_connection = conn.connection.dbapi_connection
    if dbapi_connection is None:
        raise exc.ResourceClosedError("the connection's driver connection is closed")
    return dbapi_connection.cursor()


def _run(conn: Connection, cursor: Any, compiled: _Compiled, converted: Any) -> None:
    try:
        if compiled.unprepared:
            cursor.execute(compiled.sql, converted, prepare=False)
        else:
            cursor.execute(compiled.sql, converted)
    except conn.dialect.loaded_dbapi.Error as error:
        raise failure(conn, cursor, compiled.sql, converted, error) from error
