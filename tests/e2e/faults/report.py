"""The results of a run as the table of docs/reliability.md."""

from __future__ import annotations

import statistics
from collections import defaultdict

from tests.e2e.faults.injectors import (
    BROKER_CONNECTIONS_CLOSED,
    BROKER_RESTART,
    DATABASE_CONNECTIONS_TERMINATED,
    RELAY_CRASH_AFTER_PUBLISH,
    RELAY_SIGKILL,
    SCHEDULER_SIGKILL,
    WORKER_SIGKILL,
    Injection,
)
from tests.e2e.faults.poison import poison_messages
from tests.e2e.faults.run import RunResult

FAULT_NAMES = {
    WORKER_SIGKILL: "worker process SIGKILLed mid-transaction, a new one started",
    DATABASE_CONNECTIONS_TERMINATED: "`pg_terminate_backend` on every engine connection",
    RELAY_CRASH_AFTER_PUBLISH: "outbox relay exits after publishing, before marking",
    RELAY_SIGKILL: "outbox relay SIGKILLed, a new one started",
    BROKER_CONNECTIONS_CLOSED: "`rabbitmqctl close_all_connections` (the run's vhost)",
    BROKER_RESTART: "`rabbitmqctl stop_app` / `start_app`",
    SCHEDULER_SIGKILL: "leading scheduler SIGKILLed (two running)",
}


def seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} s median, {max(values):.1f} s max"


def fault_rows(result: RunResult) -> list[str]:
    by_fault: dict[str, list[Injection]] = defaultdict(list)
    for injection in result.injections:
        by_fault[injection.fault].append(injection)
    rows = []
    verdict = result.verdict
    for fault, label in FAULT_NAMES.items():
        done = by_fault.get(fault, [])
        if fault == BROKER_RESTART and not done and not result.config.broker_restart:
            continue
        in_flight = [len(item.in_flight) for item in done]
        touched = set().union(*(item.in_flight for item in done)) if done else set()
        recovered = [item.recovered_s for item in done if item.recovered_s is not None]
        rows.append(
            f"| {label} | {len(done)} | {sum(in_flight)} ({min(in_flight, default=0)}-"
            f"{max(in_flight, default=0)}) | {len(touched & verdict.lost)} | "
            f"{len(touched & verdict.duplicated)} | {seconds(recovered)} |"
        )
    return rows


def table(result: RunResult) -> str:
    verdict, driver = result.verdict, result.driver
    poison_letters = len(verdict.dead_letters)
    header = [
        "| fault | injected | events in flight (sum, min-max per injection) | lost | "
        "duplicated effects | time to recover |",
        "|---|---|---|---|---|---|",
    ]
    extra = [
        f"| every event published twice ({driver.copies} copies, "
        f"{driver.resends} resent after an unconfirmed publish) | {driver.copies} | "
        f"{result.load.events} | {len(verdict.lost)} | {len(verdict.duplicated)} | - |",
        f"| a story's key switch (a contract's event, then a chargeback, a withdrawal...) "
        f"published once the events before it were applied | {driver.key_switches} | - | 0 | "
        f"0 | {seconds(driver.switch_waits_s)} (wait before publishing) |",
        f"| poison ({', '.join(poison.name for poison in poison_messages())}) | "
        f"{driver.poison} | - | 0 in the ledger, {poison_letters} in `dead_letters` | 0 | - |",
    ]
    return "\n".join(header + fault_rows(result) + extra)


def summary(result: RunResult) -> str:
    verdict, load = result.verdict, result.load
    lines = [
        f"load: {load.events} events ({load.story_events} story events, {len(load.ticks)} "
        f"ticks) over {load.contracts} contracts in {len(load.stories)} stories, seed "
        f"{load.seed}; {result.driver.messages} messages published by four publishers "
        f"(originals {result.driver.per_publisher}) in {result.driver.elapsed_s:.1f} s; "
        f"drained in {result.drain_s:.1f} s; replay of the publication order "
        f"{result.replay_s:.1f} s, oracle {result.oracle_s:.1f} s, run {result.total_s:.1f} s",
        f"oracle: audit {'green' if verdict.audit_ok else 'RED'} over {verdict.accounts} "
        f"accounts; {verdict.notifications_expected} notifications expected, "
        f"{verdict.notifications_received} received, {verdict.notifications_distinct} distinct; "
        f"lost {len(verdict.lost)}, duplicated {len(verdict.duplicated)}, diverged "
        f"{len(verdict.diverged)}; verify {'same books' if verdict.verify_same else 'DIFFERS'} "
        f"after {verdict.verify_steps} steps",
    ]
    for injection in result.injections:
        recovered = (
            f"{injection.recovered_s:.2f} s" if injection.recovered_s is not None else "never"
        )
        lines.append(
            f"  {injection.fault} at {injection.at_progress:.0%}: {injection.detail}; "
            f"{len(injection.in_flight)} in flight; recovered in {recovered}"
        )
    lines.extend(f"PROBLEM: {problem}" for problem in result.problems + verdict.problems)
    return "\n".join(lines)
