"""Retry or dead-letter a failed message, by the verdict of `failure_rules`.

It takes the place of Dramatiq's `Retries` middleware, which knows only a retry count: here an
unknown subject is retried for a time budget, an outage for ever, a malformed message never, and
a dead letter carries its reason into the XQ (`workers.dlq.write_dead_letter`).

A retry is Dramatiq's own mechanism: the message, with its options (`retries`, the time of its
first failure), is enqueued again with a delay on the `.DQ` queue, and the original is acked.
If that enqueue or the dead-letter copy fails, the message is nacked instead, so RabbitMQ keeps
it in the XQ (without our reason) rather than an ack dropping it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, cast

import structlog
from dramatiq import Broker, Message, Middleware
from dramatiq.broker import MessageProxy
from dramatiq.common import current_millis

from messages import EVENT_MODELS
from workers.dlq import FIRST_FAILED_AT, LAST_ERROR, write_dead_letter
from workers.metrics import EngineMetrics
from workers.middleware.failure_rules import RetryPolicy, Verdict, judge_failure

log = structlog.get_logger(__name__)

MAX_LAST_ERROR_CHARS = 500


class FailurePolicy(Middleware):
    def __init__(
        self,
        policy: RetryPolicy,
        *,
        metrics: EngineMetrics | None = None,
        now_ms: Callable[[], int] = current_millis,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.metrics = metrics
        self._now_ms = now_ms
        self._jitter = jitter

    @property
    def actor_options(self) -> set[str]:
        # `throws` tells Dramatiq's worker which exceptions are expected, so it logs them in
        # one line instead of a traceback; the verdict is still ours.
        return {"throws"}

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None:
            return
        now = self._now_ms()
        retries = message.options.get("retries", 0)
        retries = retries if isinstance(retries, int) else 0
        first_failed = message.options.setdefault(FIRST_FAILED_AT, now)
        failing_for = now - first_failed if isinstance(first_failed, int) else 0
        verdict = judge_failure(
            exception, retries=retries, failing_for_ms=failing_for, policy=self.policy
        )
        if verdict.action == "retry":
            self._retry(broker, message, verdict, retries)
        else:
            self._dead_letter(broker, message, verdict, now)
        if self.metrics is not None:
            self.metrics.record_failure(
                message.queue_name, _event_type(message), verdict.action, verdict.reason
            )

    def _retry(self, broker: Broker, message: MessageProxy, verdict: Verdict, retries: int) -> None:
        # Up to a quarter off, so that messages that failed together do not retry together.
        delay = max(1, int(verdict.delay_ms * (1 - self._jitter() / 4)))
        message.options["retries"] = retries + 1
        message.options[LAST_ERROR] = verdict.detail[:MAX_LAST_ERROR_CHARS]
        log.warning("message.retry", reason=verdict.reason, error=verdict.detail, delay_ms=delay)
        try:
            # The proxy forwards every attribute to its Message; Dramatiq's Retries relies on
            # it the same way.
            broker.enqueue(cast("Message[Any]", message), delay=delay)
        except Exception:
            log.exception("message.retry_failed", reason=verdict.reason)
            message.fail()

    def _dead_letter(
        self, broker: Broker, message: MessageProxy, verdict: Verdict, now: int
    ) -> None:
        log.error("message.dead_lettered", reason=verdict.reason, error=verdict.detail)
        try:
            write_dead_letter(broker, message, verdict.reason, verdict.detail, at_ms=now)
        except Exception:
            log.exception("message.dead_letter_copy_failed", reason=verdict.reason)
            message.fail()


def _event_type(message: MessageProxy) -> str:
    envelope = message.args[0] if message.args and isinstance(message.args[0], dict) else {}
    event_type = envelope.get("type")
    # Label values come from the wire: only known types, so that junk cannot grow the series.
    return event_type if isinstance(event_type, str) and event_type in EVENT_MODELS else "unknown"
