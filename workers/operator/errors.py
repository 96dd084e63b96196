"""Failures an operator can act on, and the one line that tells them what to do.

A command that fails prints `error: <what is wrong>; <what to do>` on stderr and exits 1
(2 for a usage mistake). The traceback is for developers: `recourse --debug` shows it.
"""

from __future__ import annotations

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

USAGE_EXIT_CODE = 2
FAILURE_EXIT_CODE = 1


class OperatorError(Exception):
    """A failure with its remedy: `problem` says what is wrong, `remedy` what to do."""

    exit_code = FAILURE_EXIT_CODE

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem}; {remedy}")
        self.problem = problem
        self.remedy = remedy


class UsageProblem(OperatorError):
    """The command was called wrongly or a setting it needs is missing (exit code 2)."""

    exit_code = USAGE_EXIT_CODE


class NotFound(OperatorError):
    """The id names nothing in this store."""

    def __init__(self, kind: str, subject_id: str, where: str, remedy: str = "") -> None:
        super().__init__(
            f"no {kind} {subject_id!r} in {where}",
            remedy or f"check the {kind} id, or point --db at the database that holds it",
        )
        self.kind = kind
        self.subject_id = subject_id


def safe_url(url: str) -> str:
    """`url` with its password masked, fit to print; the raw text when it does not parse."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, without SQLAlchemy's background link."""
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0].strip()


def explain(exc: BaseException) -> OperatorError:
    """Turn any exception a command let through into an `OperatorError` with a remedy."""
    from dramatiq.errors import BrokerConnectionError
    from pika.exceptions import AMQPError

    from messages.errors import MalformedMessage, PublishError
    from policy.errors import PolicyFileError

    if isinstance(exc, OperatorError):
        return exc
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return UsageProblem(
            f"bad database URL ({first_line(exc)})",
            "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB in --db or DATABASE_URL",
        )
    if isinstance(exc, DBAPIError):
        if "unable to open database file" in str(exc.orig):
            return OperatorError(
                f"cannot open the SQLite file ({first_line(exc)})",
                "check the path in --db or DATABASE_URL and that its folder exists",
            )
        if _is_missing_table(exc):
            return OperatorError(
                f"the database has no Recourse schema ({first_line(exc)})",
                "run `recourse migrate --db URL` first, or point --db at the engine's database",
            )
        return OperatorError(
            f"the database failed ({first_line(exc)})",
            "check that it is running and that --db or DATABASE_URL point at it",
        )
    if isinstance(exc, PublishError):
        return OperatorError(
            f"the broker did not take the message ({first_line(exc)})",
            "check that RabbitMQ is running and that --broker or BROKER_URL point at it",
        )
    if isinstance(exc, AMQPError | BrokerConnectionError):
        return OperatorError(
            f"cannot reach the broker ({first_line(exc)})",
            "check that RabbitMQ is running and that --broker or BROKER_URL point at it",
        )
    if isinstance(exc, PolicyFileError):
        return UsageProblem(
            f"the policy file is invalid ({first_line(exc)})", "fix it or unset POLICY_FILE"
        )
    if isinstance(exc, ValidationError):
        return UsageProblem(
            f"a setting is invalid ({_validation_summary(exc)})",
            "fix the environment variable it names (see `recourse --help`)",
        )
    if isinstance(exc, MalformedMessage):
        return UsageProblem(f"the message breaks the contract ({exc})", "see docs/integration.md")
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return OperatorError(
            f"{exc.strerror or first_line(exc)}{where}", "check the path and its permissions"
        )
    return OperatorError(
        f"unexpected {type(exc).__name__}: {first_line(exc)}",
        "run again with `recourse --debug ...` for the traceback and report it",
    )


def _is_missing_table(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _validation_summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']).upper()}: {item['msg']}"
        for item in exc.errors(include_url=False)
    )
