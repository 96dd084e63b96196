"""Logging: structlog for our lines, the standard library's for Dramatiq's and pika's, one format.

JSON lines in production (LOG_FORMAT=json, or auto when stderr is not a terminal), a readable
console rendering on a terminal. Both carry the context the `LogContext` middleware binds for
the message being processed (event_id, type, contract_id, attempt), since library lines go
through the same processor chain.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog
from structlog.typing import Processor

FORMATS = ("auto", "json", "console")
_OURS = "_recourse_handler"
"""Marks the handler this module installed, so a second call replaces it, not doubles it."""
QUIET_LIBRARIES = {"pika": logging.CRITICAL, "alembic.runtime.migration": logging.WARNING}
"""pika logs every connection step at INFO, and at ERROR each connection RabbitMQ dropped (an
idle publishing connection of Dramatiq's worker threads misses its heartbeats: "Connection
reset by peer") or that is closed twice at shutdown. pika's blocking connections, the only kind
the engine uses, raise every such failure to their caller, which reports it in its own line
(`intake.connection_lost`, `relay.failed`, the publisher's retries) or, in Dramatiq's case,
opens a new connection and publishes again; pika's lines would be a second, louder copy.
LOG_LEVEL=DEBUG shows all of them again. Alembic says "Context impl PostgresqlImpl." at INFO each
time a process checks its schema at start (the console after its logging is set up)."""


def use_json(log_format: str, stream: TextIO) -> bool:
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    if log_format == "auto":
        return not stream.isatty()
    return log_format == "json"


def configure_logging(
    log_format: str = "auto", level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Set up structlog and the root logger; safe to call again (the last call wins)."""
    out = stream or sys.stderr
    as_json = use_json(log_format, out)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=final,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, _OURS, False):
            root.removeHandler(existing)
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, library_level in QUIET_LIBRARIES.items():
        debugging = root.level <= logging.DEBUG
        logging.getLogger(name).setLevel(logging.DEBUG if debugging else library_level)
