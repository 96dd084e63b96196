"""The floor of the ordered intake's path: a plain consumer of `refunds.intake` that runs the
reference transaction (`bench.reference`) for each message and acks it, started by
`python -m bench.floor_worker`.

It reads what producers publish to the `refunds.events` exchange, from the queue the engine's
intake reads (declared the same way, single active consumer, the same prefetch), and hands
each message to a pool of threads with one psycopg connection each, as many as the engine's
worker threads; it acks (`multiple`) as far as every transaction before has committed. No
Dramatiq, no event log, no policy, no SQLAlchemy and no validation: what it reaches, divided by
the reference loop, is the most any engine behind this transport could reach on this machine.

`FLOOR_DSN` is the database (migrated, with the reference accounts open), `FLOOR_ACCOUNTS`
their ids, comma-separated, `FLOOR_CONNECTIONS` the size of the pool, `BROKER_URL` the vhost,
and `INTAKE_BATCH_SIZE` (256 by default, as the engine's) half the prefetch.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pika
import psycopg

from bench.reference import reference_transaction
from messages.transport import INTAKE_QUEUE, declare_intake

IDLE_WAIT_S = 0.2


class _Connections(threading.local):
    connection: psycopg.Connection[Any] | None = None


def main() -> None:
    dsn = os.environ["FLOOR_DSN"]
    accounts = [int(number) for number in os.environ["FLOOR_ACCOUNTS"].split(",")]
    threads = int(os.environ["FLOOR_CONNECTIONS"])
    prefetch = 2 * int(os.environ.get("INTAKE_BATCH_SIZE", "256"))
    local = _Connections()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())

    def apply(body: bytes) -> None:
        if local.connection is None:
            local.connection = psycopg.connect(dsn)
        # The event id is unique in the workload, so it keys the transaction as it keys the
        # inbox.
        reference_transaction(local.connection, str(json.loads(body)["event_id"]), accounts)

    connection = pika.BlockingConnection(pika.URLParameters(os.environ["BROKER_URL"]))
    channel = connection.channel()
    declare_intake(channel)
    channel.basic_qos(prefetch_count=prefetch)
    in_flight: deque[tuple[int, Future[None]]] = deque()
    with ThreadPoolExecutor(max_workers=threads) as pool:

        def on_message(_channel: object, method: Any, _properties: Any, body: bytes) -> None:
            in_flight.append((method.delivery_tag, pool.submit(apply, body)))

        channel.basic_consume(INTAKE_QUEUE, on_message)
        while not stop.is_set():
            connection.process_data_events(time_limit=0.001 if in_flight else IDLE_WAIT_S)
            last = None
            while in_flight and in_flight[0][1].done():
                tag, done = in_flight.popleft()
                done.result()  # a failed transaction ends the floor; the kept log says why
                last = tag
            if last is not None:
                channel.basic_ack(delivery_tag=last, multiple=True)
    connection.close()


if __name__ == "__main__":
    main()
