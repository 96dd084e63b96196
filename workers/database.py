"""Engines and schema migrations, for SQLite (embedded) and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from store.pipelining import settle_before_execute

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Each package keeps its revisions in a branch of its own, so that work on one package's tables
# never makes two heads in another's.
VERSION_LOCATIONS = [
    Path(__file__).resolve().parent.parent / package / "migrations"
    for package in ("ledger", "policy", "scheduler", "workers/intake", "console")
]
POOL_SIZE = 10
MAX_OVERFLOW = 20
POOL_CAPACITY = POOL_SIZE + MAX_OVERFLOW
"""The most connections a PostgreSQL engine's pool holds at once, so also the most that a
database restart can leave stale in it."""


IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
"""How long PostgreSQL lets a session sit idle inside a transaction before ending it."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings each backend needs to keep the books safe."""
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE through the dialect, not a "begin" event: any engine event makes
        # SQLAlchemy dispatch events around every statement, which costs more than the
        # statement itself on SQLite.
        engine.dialect.do_begin = _sqlite_begin  # type: ignore[method-assign]
        return engine
    # No pool_pre_ping: a check before every checkout is one more round trip per event, to catch
    # connections that only a database restart leaves stale. The worker's unit of work retries
    # an event on a lost connection at once instead (workers.unit_of_work); the relay and the
    # scheduler retry a failed round after their pause, so a restart costs each of them one
    # logged failure.
    kwargs.setdefault("pool_size", POOL_SIZE)
    kwargs.setdefault("max_overflow", MAX_OVERFLOW)
    engine = create_engine(url, **kwargs)
    # A transaction left open by a stuck thread holds its contract's row locks, and every event
    # of that contract would queue behind it for good: the server ends such a session instead
    # and the transaction rolls back. Units of work take milliseconds; the relay lifts the
    # limit for its own batches (they wait on broker confirms) and the tick publisher's lock
    # lives on a session outside any transaction.
    event.listen(engine, "connect", _set_idle_in_transaction_timeout)
    # A statement through Connection.execute runs outside pipeline mode, after the writes the
    # unit of work queued (store.pipelining). The hot statements bypass Connection.execute,
    # so the events this listener makes SQLAlchemy dispatch cost them nothing.
    event.listen(engine, "before_cursor_execute", settle_before_execute)
    return engine


def _set_idle_in_transaction_timeout(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Only where nobody chose a value: one from the URL's `options`, `connect_args`, PGOPTIONS,
    # the role, the database or the server's configuration has another source, and is kept.
    cursor.execute("SELECT setting, source FROM pg_settings WHERE name = %s", (_IDLE_SETTING,))
    setting, source = cursor.fetchone()
    if setting == "0" and source == "default":
        cursor.execute(
            f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_TIMEOUT_MS}"
        )
    cursor.close()
    # The connection is not in autocommit: end the transaction the statements opened, so the
    # setting holds for the session and the pool gets the connection idle.
    dbapi_connection.commit()


_IDLE_SETTING = "idle_in_transaction_session_timeout"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Foreign keys carry the currency checks of the ledger; WAL lets readers run beside a writer.
    # sqlite3's legacy mode emits no BEGIN before a SELECT or a SAVEPOINT, so a savepoint taken
    # first in a transaction commits on release and a later rollback cannot undo it; SQLAlchemy
    # emits BEGIN itself instead (_sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_throwaway_engine(path: Path) -> Engine:
    """A SQLite engine for a database nobody keeps, such as the one `recourse replay` makes in
    a temporary folder: not synced to disk (a crash loses nothing that matters), its
    temporary tables and a larger page cache in memory."""
    engine = make_engine(f"sqlite:///{path}")
    event.listen(engine, "connect", _sqlite_throwaway_pragmas)
    return engine


def _sqlite_throwaway_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB
    cursor.close()


def _sqlite_begin(dbapi_connection: Any) -> None:
    # IMMEDIATE takes the write lock up front, so concurrent writers queue on busy_timeout. A
    # deferred transaction that read first and then writes after another one committed fails
    # at once with "database is locked" (busy_timeout does not apply): 8 threads posting to one
    # escrow lost half their transactions that way.
    dbapi_connection.execute("BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option(
        "version_locations",
        " ".join(str(path) for path in VERSION_LOCATIONS if path.is_dir()),
    )
    config.set_main_option("path_separator", "space")
    config.attributes["engine"] = engine
    return config


def current_revisions(engine: Engine) -> list[str]:
    """The revisions the database is at, one per package branch; empty before the first
    migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return sorted(MigrationContext.configure(conn).get_current_heads())


def migrate(engine: Engine) -> None:
    """Bring the schema of every package to its newest revision."""
    command.upgrade(alembic_config(engine), "heads")
