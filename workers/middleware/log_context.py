"""Bind what identifies a message into structlog's context while it is processed."""

from __future__ import annotations

from typing import Any

import structlog
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy


def message_context(message: MessageProxy) -> dict[str, Any]:
    """The actor and what it works on (a partition): every message is the engine's own."""
    context: dict[str, Any] = {"message_id": message.message_id, "actor": message.actor_name}
    if message.args and isinstance(message.args[0], int):
        context["partition"] = message.args[0]
    return context


class LogContext(Middleware):
    """Every log line written while a message is processed names the message and its event."""

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**message_context(message))

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
