"""Every failure of a command is one line on stderr with a remedy, exit 1 (2 for usage);
`--debug` lets the exception through with its traceback."""

from __future__ import annotations

import pytest
import typer
from pika.exceptions import AMQPConnectionError
from pydantic import BaseModel, ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from messages import PublishError
from policy.errors import PolicyFileError
from workers.operator.errors import (
    NotFound,
    OperatorError,
    UsageProblem,
    explain,
    first_line,
    safe_url,
)
from workers.operator.group import OneLineErrors, set_debug


def _app(failure: BaseException) -> typer.Typer:
    app = typer.Typer(cls=OneLineErrors, pretty_exceptions_enable=False)

    @app.callback()
    def options(ctx: typer.Context, debug: bool = typer.Option(False, "--debug")) -> None:
        set_debug(ctx, debug)

    @app.command()
    def fail() -> None:
        raise failure

    @app.command()
    def usage(count: int = typer.Option(...)) -> None:
        typer.echo(str(count))

    return app


def test_an_operator_error_is_one_line_on_stderr_with_exit_code_1() -> None:
    result = CliRunner().invoke(_app(NotFound("contract", "c9", "sqlite:///x.sqlite")), ["fail"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: no contract 'c9' in sqlite:///x.sqlite; check the contract id, or point --db "
        "at the database that holds it"
    ]


def test_a_usage_problem_exits_2() -> None:
    result = CliRunner().invoke(_app(UsageProblem("no broker", "set BROKER_URL")), ["fail"])
    assert result.exit_code == 2
    assert result.stderr == "error: no broker; set BROKER_URL\n"


def test_typer_usage_errors_keep_their_exit_code_2() -> None:
    result = CliRunner().invoke(_app(RuntimeError("unused")), ["usage", "--count", "x"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_an_unexpected_exception_is_one_line_that_points_at_debug() -> None:
    result = CliRunner().invoke(_app(KeyError("boom")), ["fail"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unexpected KeyError: 'boom'; run again with `recourse --debug ...` for the "
        "traceback and report it"
    ]


def test_debug_lets_the_exception_through() -> None:
    failure = KeyError("boom")
    result = CliRunner().invoke(_app(failure), ["--debug", "fail"])
    assert result.exit_code == 1
    assert result.exception is failure
    assert "error:" not in result.output


def test_a_database_that_fails_says_so_and_what_to_do() -> None:
    dropped = OperationalError("SELECT 1", {}, Exception("server closed the connection\nmore"))
    failure = explain(dropped)
    assert failure.exit_code == 1
    assert str(failure) == (
        "the database failed (server closed the connection); check that it is running and "
        "that --db or DATABASE_URL point at it"
    )


def test_a_sqlite_file_that_cannot_be_opened_names_the_path_as_the_suspect() -> None:
    engine = create_engine("sqlite:////nonexistent-dir/x.sqlite")
    with pytest.raises(OperationalError) as caught:
        engine.connect()
    failure = explain(caught.value)
    assert failure.exit_code == 1
    assert str(failure) == (
        "cannot open the SQLite file (unable to open database file); check the path in --db "
        "or DATABASE_URL and that its folder exists"
    )


def test_a_missing_table_asks_for_a_migration() -> None:
    with create_engine("sqlite://").connect() as conn, pytest.raises(OperationalError) as caught:
        conn.execute(text("SELECT * FROM inbox"))
    assert "run `recourse migrate --db URL` first" in str(explain(caught.value))


def test_a_bad_database_url_is_a_usage_problem() -> None:
    from sqlalchemy.exc import ArgumentError

    failure = explain(ArgumentError("Could not parse SQLAlchemy URL"))
    assert isinstance(failure, UsageProblem)
    assert failure.exit_code == 2
    assert "sqlite:///FILE or postgresql+psycopg://" in str(failure)


@pytest.mark.parametrize(
    ("exc", "fragment", "code"),
    [
        (PublishError("broker did not confirm"), "check that RabbitMQ is running", 1),
        (AMQPConnectionError("refused"), "cannot reach the broker (refused)", 1),
        (PolicyFileError("spectrum.fees.client_fee_bps: too big"), "unset POLICY_FILE", 2),
        (FileNotFoundError(2, "No such file or directory", "story.jsonl"), "(story.jsonl)", 1),
    ],
)
def test_library_failures_get_a_remedy(exc: Exception, fragment: str, code: int) -> None:
    failure = explain(exc)
    assert fragment in str(failure)
    assert failure.exit_code == code
    assert "\n" not in str(failure)


def test_an_invalid_setting_names_its_environment_variable() -> None:
    class Settings(BaseModel):
        tick_interval_seconds: float

    with pytest.raises(ValidationError) as caught:
        Settings.model_validate({"tick_interval_seconds": "soon"})
    assert "TICK_INTERVAL_SECONDS" in str(explain(caught.value))


def test_an_operator_error_is_explained_as_itself() -> None:
    failure = OperatorError("it broke", "fix it")
    assert explain(failure) is failure


def test_urls_are_printed_without_their_password() -> None:
    assert safe_url("postgresql+psycopg://app:secret@db/recourse") == (
        "postgresql+psycopg://app:***@db/recourse"
    )
    assert safe_url("amqp://guest:guest@rabbit:5672/prod") == "amqp://guest:***@rabbit:5672/prod"
    assert safe_url("nonsense") == "nonsense"


def test_first_line_drops_the_rest_of_a_long_message() -> None:
    assert first_line(RuntimeError("line one\n  line two")) == "line one"
    assert first_line(RuntimeError("")) == "RuntimeError"
