"""The Dramatiq broker: RabbitMQ when BROKER_URL is set, the in-process StubBroker otherwise.

Queues and routing (all on the default exchange, durable, messages persistent):

- `refunds.events` -> actor `handle_event`: every inbound event, the envelope as the message's
  one positional argument (MESSAGES.md, Transport).
- `refunds.ticks` -> actor `handle_tick`: `deadline.tick` only, so that a backlog of events
  never delays deadlines.
- `refunds.events.DQ`, `refunds.ticks.DQ`: retries waiting out their delay (Dramatiq's delay
  queues; a worker holds them and moves them back to the work queue when due).
- `refunds.events.XQ`, `refunds.ticks.XQ`: dead letters, each with its reason in
  `options.dead_letter_reason` (`workers.dlq`).

Outbound notifications do not go through Dramatiq: the relay publishes them to the topic
exchange `refunds.notifications`, routing key = notification type (`workers.relay`).

RabbitMQ is used with publisher confirms (`confirm_delivery=True`), so a retry or a dead letter
the worker enqueues is on disk before the original is acked. The middleware is ours alone:
Dramatiq's defaults are left out: `Retries` is replaced by `FailurePolicy`; `TimeLimit` and
`ShutdownNotifications` start only in the `dramatiq` command's process boot, and an interrupt
thrown into a thread mid-transaction would buy nothing over the rollback we already get;
`AgeLimit`, `Callbacks` and `Pipelines` are unused. The queues are declared with the
arguments `messages.transport` spells out for publishers in other languages.

The RabbitMQ consumer acks only what its own channel delivered, so that a reconnect never acks
the wrong message (`workers.consumer`).
"""

from __future__ import annotations

from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker

from workers.consumer import ChannelBoundRabbitmqBroker
from workers.metrics import EngineMetrics
from workers.middleware import FailurePolicy, LogContext, MessageMetrics, RetryPolicy
from workers.settings import Settings


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        min_backoff_ms=settings.retry_min_backoff_ms,
        max_backoff_ms=settings.retry_max_backoff_ms,
        unknown_subject_budget_ms=int(settings.unknown_subject_retry_seconds * 1000),
        error_max_retries=settings.error_max_retries,
    )


def worker_middleware(policy: RetryPolicy, metrics: EngineMetrics) -> list[Middleware]:
    return [LogContext(), MessageMetrics(metrics), FailurePolicy(policy, metrics=metrics)]


def build_broker(settings: Settings, metrics: EngineMetrics) -> Broker:
    middleware = worker_middleware(retry_policy(settings), metrics)
    if settings.broker_url:
        return ChannelBoundRabbitmqBroker(
            url=settings.broker_url, confirm_delivery=True, middleware=middleware
        )
    return StubBroker(middleware=middleware)
