"""A deterministic, realistic mix of inbound events across many contracts.

Every benchmark that feeds events (the replay, the workers, the memory soak) draws them from
here, so their figures describe the same work. Five contract stories take turns, each a few
events long, and a window of contracts runs side by side so that consecutive events belong to
different contracts (as on a busy marketplace, and so that worker threads rarely serialize on
one contract's lock):

- spectrum fixed, work not started: funded twice, one milestone released, the other refunded
  automatically (SC-2);
- spectrum fixed, work started: the refund request opens a dispute (SC-3), resolved with a
  partial refund;
- spectrum fixed, released then disputed: a full refund clawed back from the creator (SC-5,
  SC-6);
- cadcrowd hourly: a paid invoice, a refund request the expert approves (CC-2);
- cadcrowd fixed: released, then a voluntary partial refund by the expert (CC-10).

A `deadline.tick` follows every `TICK_EVERY` events, with the clock of the events, so deadlines
(review windows, SC-4 finality, dispute SLAs) fire as they would in production. The same
arguments always give the same events, byte for byte.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from messages.inbound import DisputeResolved
from testbed.stories import envelope

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
STEP = timedelta(minutes=1)
TICK_EVERY = 50
WINDOW = 64
STORY_KINDS = 5

Event = dict[str, Any]
Step = tuple[str, dict[str, Any]]

# MESSAGES.md gives `dispute.resolved` its dispute's `contract_id`, its ordering key. Models
# without that field (the ordered intake before the contract change that adds it) can carry
# no `dispute.resolved` at all: it has no ordering key, so it could be neither published nor
# taken in. The stories then leave it out, and their disputes stay open.
_RESOLUTION_HAS_KEY = "contract_id" in DisputeResolved.model_fields


def _publishable(steps: list[Step]) -> list[Step]:
    if _RESOLUTION_HAS_KEY:
        return steps
    return [step for step in steps if step[0] != "dispute.resolved"]


def _amount(number: int) -> int:
    # Whole dollars between $100 and $999: varied, never below the small-refund threshold.
    return 10_000 + (number * 7_919) % 90_000 // 100 * 100


def _monday_before(at: datetime) -> str:
    monday = (at - timedelta(days=at.weekday() + 7)).date()
    return monday.isoformat()


def _story(number: int, at: datetime) -> list[Step]:
    """The events of contract `number`, in order; `at` is when its first event happens."""
    contract = f"c{number}"
    users = max(WINDOW, number // 4 + 1)
    client = f"u{(number * 2) % users}"
    creator = f"u{(number * 2 + 1) % users}"
    amount = _amount(number)
    fee = amount * 3 // 100
    kind = number % STORY_KINDS
    milestone, payment = f"m{number}", f"p{number}"

    def opened(kind_name: str, preset: str) -> Step:
        return (
            "contract.opened",
            {
                "contract_id": contract,
                "kind": kind_name,
                "client_id": client,
                "creator_id": creator,
                "currency": "USD",
                "policy": preset,
            },
        )

    def funded(milestone_id: str, payment_id: str, minor: int) -> Step:
        return (
            "milestone.funded",
            {
                "contract_id": contract,
                "milestone_id": milestone_id,
                "payment_id": payment_id,
                "amount_minor": minor,
                "processor_fee_minor": minor * 3 // 100,
            },
        )

    def started(milestone_id: str) -> Step:
        return (
            "work.started",
            {"contract_id": contract, "milestone_id": milestone_id, "evidence": "delivery"},
        )

    def released(milestone_id: str) -> Step:
        return (
            "milestone.released",
            {"contract_id": contract, "milestone_id": milestone_id, "released_by": "client"},
        )

    def requested(request_id: str, target_id: str, minor: int) -> Step:
        return (
            "refund.requested",
            {
                "request_id": request_id,
                "contract_id": contract,
                "target_id": target_id,
                "amount_minor": minor,
                "reason": "not what we agreed",
            },
        )

    closed: Step = ("contract.closed", {"contract_id": contract})
    if kind == 0:
        second = f"m{number}b"
        return [
            opened("fixed", "spectrum"),
            funded(milestone, payment, amount),
            funded(second, f"p{number}b", amount // 2),
            started(milestone),
            released(milestone),
            requested(f"r{number}", second, amount // 2),
            closed,
        ]
    if kind == 1:
        return [
            opened("fixed", "spectrum"),
            funded(milestone, payment, amount),
            started(milestone),
            requested(f"r{number}", milestone, amount),
            (
                "dispute.resolved",
                {
                    "dispute_id": f"r{number}",
                    "contract_id": contract,
                    "outcome": "partial_refund",
                    "refund_amount_minor": amount // 4,
                },
            ),
            closed,
        ]
    if kind == 2:
        return [
            opened("fixed", "spectrum"),
            funded(milestone, payment, amount),
            started(milestone),
            released(milestone),
            (
                "dispute.opened",
                {
                    "dispute_id": f"d{number}",
                    "contract_id": contract,
                    "target_id": milestone,
                    "reason": "the delivery is broken",
                },
            ),
            (
                "dispute.resolved",
                {"dispute_id": f"d{number}", "contract_id": contract, "outcome": "full_refund"},
            ),
            closed,
        ]
    if kind == 3:
        invoice = f"i{number}"
        return [
            opened("hourly", "cadcrowd"),
            (
                "hourly.invoice_paid",
                {
                    "contract_id": contract,
                    "invoice_id": invoice,
                    "period_start": _monday_before(at),
                    "payment_id": payment,
                    "amount_minor": amount,
                    "processor_fee_minor": fee,
                },
            ),
            requested(f"r{number}", invoice, amount // 2),
            (
                "refund.approved",
                {
                    "contract_id": contract,
                    "target_id": invoice,
                    "amount_minor": amount // 2,
                    "approved_by": "creator",
                    "request_id": f"r{number}",
                },
            ),
            closed,
        ]
    return [
        opened("fixed", "cadcrowd"),
        funded(milestone, payment, amount),
        released(milestone),
        (
            "refund.approved",
            {
                "contract_id": contract,
                "target_id": milestone,
                "amount_minor": amount // 5,
                "approved_by": "creator",
            },
        ),
        closed,
    ]


def events(count: int, *, prefix: str = "b", window: int = WINDOW) -> Iterator[Event]:
    """`count` envelopes: contract stories interleaved `window` at a time, ticks among them.

    `prefix` starts every id (events, contracts, users...), so two runs into one database
    never collide. Contracts still open when `count` is reached simply stop where they are.
    """
    at = START
    emitted = 0
    next_contract = 0
    active: deque[tuple[int, Iterator[Step], int]] = deque()
    ticks = 0
    while emitted < count:
        if emitted and emitted % TICK_EVERY == 0 and ticks < emitted // TICK_EVERY:
            ticks += 1
            yield envelope(f"{prefix}-tick-{ticks}", "deadline.tick", at, {})
            emitted += 1
            continue
        while len(active) < window:
            active.append((next_contract, iter(_publishable(_story(next_contract, at))), 0))
            next_contract += 1
        number, steps, position = active.popleft()
        step = next(steps, None)
        if step is None:
            continue
        type_, data = step
        at += STEP
        yield envelope(f"{prefix}-{number}-{position}", type_, at, _prefixed(data, prefix))
        emitted += 1
        active.append((number, steps, position + 1))


_ID_FIELDS = frozenset(
    {
        "contract_id",
        "client_id",
        "creator_id",
        "milestone_id",
        "payment_id",
        "request_id",
        "target_id",
        "dispute_id",
        "invoice_id",
    }
)


def _prefixed(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {key: f"{prefix}{value}" if key in _ID_FIELDS else value for key, value in data.items()}


def lines(count: int, *, prefix: str = "b") -> Iterator[str]:
    """The same events as JSON Lines (no trailing newline on each)."""
    for event in events(count, prefix=prefix):
        yield json.dumps(event, separators=(",", ":"))


def write_file(path: Path, count: int, *, prefix: str = "b") -> Path:
    """Write `count` events to `path` as JSON Lines and return the path."""
    with path.open("w", encoding="utf-8") as handle:
        for line in lines(count, prefix=prefix):
            handle.write(line + "\n")
    return path
