"""Log output: JSON lines in production, console on a terminal, one format for every library."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from workers.logging import configure_logging, use_json


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_bound_message_context() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    structlog.contextvars.bind_contextvars(event_id="evt-1", contract_id="c1", attempt=2)

    structlog.get_logger("workers.test").info("event.handled", status="applied")

    (line,) = lines(stream)
    assert line["event"] == "event.handled"
    assert line["level"] == "info"
    assert (line["event_id"], line["contract_id"], line["attempt"]) == ("evt-1", "c1", 2)
    assert str(line["timestamp"]).endswith("Z")


def test_library_lines_through_the_standard_logger_come_out_the_same_way() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)
    structlog.contextvars.bind_contextvars(event_id="evt-2")

    logging.getLogger("dramatiq.worker").warning("Retrying message %r.", "m-1")

    (line,) = lines(stream)
    assert line["event"] == "Retrying message 'm-1'."
    assert (line["logger"], line["level"], line["event_id"]) == (
        "dramatiq.worker",
        "warning",
        "evt-2",
    )


def test_the_console_format_is_plain_text() -> None:
    stream = io.StringIO()
    configure_logging("console", "DEBUG", stream)

    structlog.get_logger("x").debug("scheduler.tick", event_id="tick:1")

    output = stream.getvalue()
    assert "scheduler.tick" in output
    assert "event_id=tick:1" in output
    assert not output.startswith("{")


def test_auto_is_json_unless_the_stream_is_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert use_json("auto", io.StringIO())
    assert not use_json("auto", Terminal())
    assert use_json("json", Terminal())


def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", io.StringIO())
    configure_logging("json", "INFO", stream)

    structlog.get_logger("x").info("once")

    assert len(lines(stream)) == 1


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        configure_logging("xml")


def test_pika_chatter_is_kept_below_warning() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)

    logging.getLogger("pika.adapters.blocking_connection").info("Created channel=1")

    assert stream.getvalue() == ""


def test_pika_errors_about_a_dropped_connection_stay_out_of_a_normal_log() -> None:
    """pika raises them to its caller, which reports them in a line of its own."""
    stream = io.StringIO()
    configure_logging("json", "INFO", stream)

    logging.getLogger("pika.adapters.base_connection").error(
        "connection_lost: StreamLostError: Connection reset by peer"
    )
    logging.getLogger("pika.adapters.blocking_connection").error(
        "BlockingConnection.close(200, 'Normal shutdown') called on closed connection."
    )

    assert stream.getvalue() == ""


def test_log_level_debug_shows_pika_again() -> None:
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream)

    logging.getLogger("pika.adapters.base_connection").error("connection_lost")
    logging.getLogger("pika.adapters.blocking_connection").debug("Created channel=1")

    assert [line["event"] for line in lines(stream)] == ["connection_lost", "Created channel=1"]
