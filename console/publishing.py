"""Where the console's decisions go: the broker in production, the engine itself embedded."""

from __future__ import annotations

from sqlalchemy import Engine

from console.decisions import Publisher
from messages.publisher import EventPublisher
from policy.config import PolicySet
from workers.unit_of_work import EventProcessor

PUBLISH_ATTEMPTS = 3


def broker_publisher(url: str) -> Publisher:
    """Publish each decision with confirms, on a connection of its own.

    Decisions come at a human pace from a pool of request threads, and a pika connection
    must not be shared between threads: one short connection per decision is simplest.
    """

    def publish(envelope: dict[str, object]) -> None:
        with EventPublisher(url, max_attempts=PUBLISH_ATTEMPTS) as publisher:
            publisher.publish(envelope)

    return publish


def embedded_publisher(engine: Engine, policies: PolicySet) -> Publisher:
    """Apply each decision at once through the engine's own unit of work (embedded mode)."""
    processor = EventProcessor(engine, policies)

    def publish(envelope: dict[str, object]) -> None:
        processor(envelope)

    return publish
