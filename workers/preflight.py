"""Checks a long-running process makes before it starts: can it reach its database and its
broker at all?

Once running, the processes ride out an outage (they retry until the server is back). At
start-up there is nothing to ride out: a closed port, a database that does not exist or a
schema that was never migrated is a setting to fix, so the process says so in one line and
exits instead of retrying for ever.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pika
import pika.exceptions
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from workers.operator.errors import OperatorError, UsageProblem, first_line, safe_url
from workers.settings import Settings

CONNECT_TIMEOUT_S = 5
"""How long one connection attempt may take before the check gives up (both servers)."""


def check_servers(settings: Settings, *, sqlite_schema: bool = True) -> None:
    """Before a long-running process starts: its database (migrated) and its broker answer.

    `sqlite_schema=False` is for `recourse run`, which migrates a SQLite database itself.
    """
    embedded = make_url(settings.database_url).get_backend_name() == "sqlite"
    check_database(settings.database_url, schema=sqlite_schema or not embedded)
    if settings.broker_url:
        check_broker(settings.broker_url)


class StartupProblem(OperatorError):
    """A setting keeps the process from starting; the message names it and its URL."""


def check_database(url: str, *, setting: str = "DATABASE_URL", schema: bool = True) -> None:
    """Connect to `url` once; with `schema`, also require the schema at the code's revision.

    A SQLite file must exist when `schema` is asked for, so that a typo in the path is an
    error, not a new empty database.
    """
    from workers.database import alembic_config, make_engine

    shown = safe_url(url)
    # A URL that does not parse raises ArgumentError: the CLI's usage error for it (exit 2).
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_path(parsed.database, shown, setting=setting, must_exist=schema)
        engine = make_engine(url)
    else:
        engine = make_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    except SQLAlchemyError as exc:
        raise StartupProblem(
            f"cannot use the database {shown} from {setting} ({first_line(exc)})",
            f"check that the server runs, that the database exists and that {setting} is right",
        ) from None
    finally:
        engine.dispose()
    if not schema:
        return
    wanted = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    if current != wanted:
        state = "has no Recourse schema" if not current else "has an older Recourse schema"
        raise StartupProblem(
            f"the database {shown} from {setting} {state}",
            f"run `recourse migrate` with the same {setting} first",
        )


def _check_sqlite_path(database: str | None, shown: str, *, setting: str, must_exist: bool) -> None:
    if not database or database == ":memory:":
        return
    path = Path(database)
    if must_exist and not path.is_file():
        raise StartupProblem(
            f"the SQLite file of {setting} ({shown}) does not exist",
            "check the path, or run `recourse migrate` to create the database",
        )
    if not path.parent.is_dir():
        raise StartupProblem(
            f"the folder of the SQLite file of {setting} ({shown}) does not exist",
            "check the path, or create the folder",
        )


def check_broker(url: str, *, setting: str = "BROKER_URL") -> None:
    """Open one AMQP connection to `url` (log in, open the vhost), then close it."""
    shown = safe_amqp_url(url)
    try:
        parameters = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        raise UsageProblem(
            f"{setting} is not an AMQP URL ({exc})", "use amqp://USER:PASS@HOST:5672/VHOST"
        ) from None
    parameters.connection_attempts = 1
    parameters.socket_timeout = CONNECT_TIMEOUT_S
    parameters.stack_timeout = 2 * CONNECT_TIMEOUT_S
    parameters.blocked_connection_timeout = CONNECT_TIMEOUT_S
    try:
        connection = pika.BlockingConnection(parameters)
    except pika.exceptions.ProbableAuthenticationError:
        raise StartupProblem(
            f"the broker {shown} from {setting} refused the user name or password",
            f"check the user and password in {setting}",
        ) from None
    except pika.exceptions.ProbableAccessDeniedError:
        raise StartupProblem(
            f"the broker {shown} from {setting} refused access to the vhost",
            f"check the vhost in {setting} and the user's permissions on it",
        ) from None
    except (pika.exceptions.AMQPError, OSError) as exc:
        raise StartupProblem(
            f"cannot reach the broker {shown} from {setting} ({_amqp_reason(exc)})",
            f"check that RabbitMQ runs and that {setting} names its host and port",
        ) from None
    connection.close()


def safe_amqp_url(url: str) -> str:
    """`url` with its password masked, fit to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _amqp_reason(exc: BaseException) -> str:
    """The innermost cause pika wraps in its connection errors: `Connection refused`."""
    while True:
        if exc.args and isinstance(exc.args[0], BaseException):
            exc = exc.args[0]
        elif isinstance(getattr(exc, "exception", None), BaseException):
            # pika's connector errors keep the socket's error in `exception`.
            exc = exc.exception  # type: ignore[attr-defined]
        else:
            break
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return first_line(exc) if str(exc) else type(exc).__name__
