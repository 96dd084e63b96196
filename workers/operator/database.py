"""Open the engine's database for reading, with a clear error for each way that fails.

Operator commands only read. They read in one transaction, so a story is told from one
snapshot even while workers write (read-only and REPEATABLE READ on PostgreSQL; SQLite's
WAL gives a reader its snapshot at the first read).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from ledger.tables import transfers
from policy.tables import inbox
from scheduler.tables import deadlines
from workers.database import make_engine
from workers.operator.errors import OperatorError, UsageProblem, first_line, safe_url

REQUIRED_TABLES = (inbox.name, transfers.name, deadlines.name)
CONNECT_TIMEOUT_S = 5
"""An operator waiting on a host that never answers learns so in seconds, not minutes."""

URL_HELP = "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB in --db or DATABASE_URL"


@contextmanager
def reading(url: str) -> Iterator[Connection]:
    """A connection to the database at `url`, inside one read-only transaction."""
    engine = _engine(url)
    try:
        with _connect(engine, url) as conn, conn.begin():
            _require_schema(conn, url)
            yield conn
    finally:
        engine.dispose()


def describe(url: str) -> str:
    """How a command names the database in its messages: the URL, password masked."""
    return safe_url(url)


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageProblem(f"bad database URL {url!r}", URL_HELP) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        _require_sqlite_file(parsed.database, url)
        return _make(url)
    if backend == "postgresql":
        return _make(
            url,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
            isolation_level="REPEATABLE READ",
            execution_options={"postgresql_readonly": True},
        )
    raise UsageProblem(f"unsupported database {safe_url(url)!r}", URL_HELP)


def _make(url: str, **kwargs: object) -> Engine:
    try:
        return make_engine(url, **kwargs)
    except ArgumentError as exc:  # a driver that is not installed, a bad query argument
        raise UsageProblem(
            f"bad database URL {safe_url(url)!r} ({first_line(exc)})", URL_HELP
        ) from None


def _require_sqlite_file(database: str | None, url: str) -> None:
    # SQLite would create an empty file for a mistyped path and then report that nothing
    # exists, which hides the real mistake.
    if not database or database == ":memory:":
        raise UsageProblem(
            f"{url!r} is an in-memory database, which holds nothing to show",
            "point --db at a database file, e.g. sqlite:///recourse.sqlite",
        )
    if not Path(database).is_file():
        raise OperatorError(
            f"no database file {database!r}",
            "check the path in --db or DATABASE_URL (or fill one with "
            "`recourse replay FILE --db sqlite:///FILE`)",
        )


@contextmanager
def _connect(engine: Engine, url: str) -> Iterator[Connection]:
    try:
        conn = engine.connect()
    except DBAPIError as exc:
        raise OperatorError(
            f"cannot reach the database at {safe_url(url)} ({first_line(exc)})",
            "check that it is running and that --db or DATABASE_URL point at it",
        ) from None
    with conn:
        yield conn


def _require_schema(conn: Connection, url: str) -> None:
    missing = [name for name in REQUIRED_TABLES if not inspect(conn).has_table(name)]
    if missing:
        raise OperatorError(
            f"the database at {safe_url(url)} has no Recourse schema "
            f"(missing {', '.join(missing)})",
            "point --db at the engine's database, or run `recourse migrate --db URL`",
        )
