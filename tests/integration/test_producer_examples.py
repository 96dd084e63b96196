"""The producers of docs/integration.md, run for real: the package's Python publisher and the
Node.js example with a plain AMQP client (amqplib) publish into a running worker, and what they
sent is applied."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ordered_driver import live_outcome, wait_settled, wait_until
from sqlalchemy import Engine, select

from messages.publisher import EventPublisher
from policy.tables import inbox
from workers.runtime import Runtime, WorkerHandle
from workers.settings import Settings

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

NODE_EXAMPLE = Path(__file__).parents[2] / "examples" / "producers" / "node"


def story(contract: str) -> list[dict[str, Any]]:
    def event(n: int, type_: str, **data: Any) -> dict[str, Any]:
        return {
            "event_id": f"{contract}-{n}",
            "type": type_,
            "occurred_at": f"2026-03-02T1{n}:00:00Z",
            "schema_version": 1,
            "data": data,
        }

    return [
        event(
            0,
            "contract.opened",
            contract_id=contract,
            kind="fixed",
            client_id="ana",
            creator_id="ben",
            currency="USD",
            policy="spectrum",
        ),
        event(
            1,
            "milestone.funded",
            contract_id=contract,
            milestone_id=f"{contract}-m",
            payment_id=f"{contract}-p",
            amount_minor=50_000,
            processor_fee_minor=1_480,
        ),
        event(
            2,
            "milestone.released",
            contract_id=contract,
            milestone_id=f"{contract}-m",
            released_by="client",
        ),
    ]


@pytest.fixture
def worker(pg_url: str, pg_engine: Engine, rabbit_url: str) -> Iterator[Runtime]:
    runtime = Runtime.build(Settings(database_url=pg_url, broker_url=rabbit_url))
    handle: WorkerHandle = runtime.start_worker(2, timeout_ms=100)
    assert handle.consumer is not None
    wait_until(handle.consumer.consuming.is_set, "the intake to consume")
    yield runtime
    handle.stop()
    runtime.close()


def results(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(inbox.c.event_id, inbox.c.result)).all())


def test_the_python_publisher_and_the_node_example_both_reach_the_engine(
    worker: Runtime, rabbit_url: str, tmp_path: Path
) -> None:
    with EventPublisher(rabbit_url) as publisher:
        for envelope in story("c-python"):
            publisher.publish(envelope)
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(json.dumps(envelope) for envelope in story("c-node")) + "\n")
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the second producer"
    finished = subprocess.run(
        [node, "publish.mjs", str(events)],
        cwd=NODE_EXAMPLE,
        env={"BROKER_URL": rabbit_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout) == {"sent": 3}

    wait_settled(worker.engine, 6)

    assert results(worker.engine) == {
        f"{contract}-{n}": "applied" for contract in ("c-python", "c-node") for n in range(3)
    }
    balances = live_outcome(worker.engine).balances
    assert balances["user:ben"] == {"USD": 2 * 46_000}
