"""Declare what producers publish into: the `refunds.events` exchange and the intake queue
bound behind it (`messages.transport.declare_intake`). The worker's intake consumer declares
them too; `recourse migrate` does it once at deployment, so producers may start first."""

from __future__ import annotations

import pika

from messages.transport import declare_intake


def declare_broker_topology(url: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        declare_intake(connection.channel())
    finally:
        connection.close()
