"""Bind what identifies a message into structlog's context while it is processed."""

from __future__ import annotations

from typing import Any

import structlog
from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

MAX_VALUE_CHARS = 128


def message_context(message: MessageProxy) -> dict[str, Any]:
    """event_id, type, contract_id (from the envelope, when it has them), attempt, message_id.

    Read from the raw argument, before validation: a malformed message is logged with whatever
    identifies it. `attempt` counts from 1; `retries` is how many attempts failed before.
    """
    retries = message.options.get("retries", 0)
    retries = retries if isinstance(retries, int) else 0
    context: dict[str, Any] = {
        "message_id": message.message_id,
        "queue": message.queue_name,
        "actor": message.actor_name,
        "attempt": retries + 1,
        "retries": retries,
    }
    envelope = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
    data = envelope.get("data")
    for key, value in (
        ("event_id", envelope.get("event_id")),
        ("type", envelope.get("type")),
        ("contract_id", data.get("contract_id") if isinstance(data, dict) else None),
    ):
        if isinstance(value, str):
            context[key] = value[:MAX_VALUE_CHARS]
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
