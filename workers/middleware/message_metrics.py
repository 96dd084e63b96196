"""Per-message timings and the in-progress gauge, like Dramatiq's Prometheus middleware."""

from __future__ import annotations

import time
from typing import Any

from dramatiq import Broker, Middleware
from dramatiq.broker import MessageProxy

from workers.metrics import EngineMetrics


class MessageMetrics(Middleware):
    def __init__(self, metrics: EngineMetrics) -> None:
        self.metrics = metrics
        self._started: dict[str, float] = {}

    def before_process_message(self, broker: Broker, message: MessageProxy) -> None:
        self.metrics.in_progress.labels(message.queue_name, message.actor_name).inc()
        self._started[message.message_id] = time.perf_counter()

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        labels = (message.queue_name, message.actor_name)
        started = self._started.pop(message.message_id, None)
        if started is not None:
            self.metrics.message_seconds.labels(*labels).observe(time.perf_counter() - started)
        self.metrics.in_progress.labels(*labels).dec()

    after_skip_message = after_process_message
