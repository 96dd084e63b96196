"""The Dramatiq broker of the engine's own nudges: RabbitMQ when BROKER_URL is set, the
in-process StubBroker otherwise.

Producers never write to Dramatiq's queues: they publish bare envelopes to the `refunds.events`
exchange, which the intake reads (`workers.intake`). Dramatiq carries only the engine's nudges
(`workers.actors`) on `recourse.apply`, so every field of a Dramatiq message is the engine's.

Nudges are sent without publisher confirms: one lost in a broker failure costs the sweeper's
next look (SWEEP_SECONDS), never an event, while a confirm would cost the intake a round trip
for every partition of every batch. The middleware is ours alone: Dramatiq's defaults are left
out, `Retries` among them, since an actor never raises (a failed drain is nudged again by the
sweeper) and a nudge never needs a retry queue. The RabbitMQ consumer acks only what its own
channel delivered, so that a reconnect never acks the wrong message (`workers.consumer`).
"""

from __future__ import annotations

from dramatiq import Broker, Middleware
from dramatiq.brokers.stub import StubBroker

from workers.consumer import ChannelBoundRabbitmqBroker
from workers.metrics import EngineMetrics
from workers.middleware import LogContext, MessageMetrics
from workers.settings import Settings


def worker_middleware(metrics: EngineMetrics) -> list[Middleware]:
    return [LogContext(), MessageMetrics(metrics)]


def build_broker(settings: Settings, metrics: EngineMetrics) -> Broker:
    middleware = worker_middleware(metrics)
    if settings.broker_url:
        return ChannelBoundRabbitmqBroker(
            url=settings.broker_url, confirm_delivery=False, middleware=middleware
        )
    return StubBroker(middleware=middleware)
