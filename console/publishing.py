"""Where the console's decisions go: the broker in production, the engine itself embedded."""

from __future__ import annotations

import json

from sqlalchemy import Engine

from console.decisions import Publisher
from messages.publisher import EventPublisher
from policy.config import PolicySet
from workers.intake.barrier import Barrier
from workers.intake.drain import TICKS_PARTITION, Drainer, RetryBudget
from workers.intake.producers import Producers
from workers.intake.service import Intake
from workers.settings import EMBEDDED_USER

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


CONSOLE_PRODUCER = "console"
"""The producer the embedded console's decisions are recorded as."""


def embedded_intake(engine: Engine, policies: PolicySet) -> Intake:
    """The engine's own intake that drains each partition it appends to at once (embedded
    mode): the same judge, log and order as every other event, with no broker and whether or
    not `recourse run` is up. An event that must wait for its subject stays parked for the
    engine's sweeper."""
    drainer = Drainer(engine, policies, budget=RetryBudget(), retry_later=lambda *_: None)
    barrier = Barrier(engine, policies, on_fired=lambda: None)

    def drain_now(partitions: set[int]) -> None:
        for partition in sorted(partitions - {TICKS_PARTITION}):
            drainer.drain(partition)
        barrier.fire_ready()

    return Intake(engine, Producers(engine_user=EMBEDDED_USER), nudge=drain_now)


def swept_intake(engine: Engine, producers: Producers) -> Intake:
    """The intake with a broker: what it appends, the running workers' sweepers drain (as
    `recourse dlq retry` submits)."""
    return Intake(engine, producers, nudge=lambda _partitions: None)


def embedded_publisher(engine: Engine, policies: PolicySet) -> Publisher:
    """Take each decision in through `embedded_intake`, as the console's producer."""
    intake = embedded_intake(engine, policies)

    def publish(envelope: dict[str, object]) -> None:
        intake.submit(json.dumps(envelope), user_id=CONSOLE_PRODUCER)

    return publish
