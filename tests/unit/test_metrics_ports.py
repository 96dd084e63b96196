"""The metrics port each process takes: METRICS_PORT when set, else its role's own."""

from __future__ import annotations

from workers.metrics import RELAY, ROLES, SCHEDULER, WORKER
from workers.metrics_ports import DEFAULT_METRICS_PORTS, metrics_port


def test_each_role_has_a_port_of_its_own() -> None:
    ports = [metrics_port(None, frozenset({role})) for role in (WORKER, RELAY, SCHEDULER)]

    assert ports == [9191, 9190, 9189]


def test_worker_processes_count_up_from_the_worker_port_away_from_the_others() -> None:
    others = {DEFAULT_METRICS_PORTS[RELAY], DEFAULT_METRICS_PORTS[SCHEDULER]}

    assert all(port < DEFAULT_METRICS_PORTS[WORKER] for port in others)


def test_run_takes_the_worker_port_and_a_set_port_wins() -> None:
    assert metrics_port(None, ROLES) == 9191
    assert metrics_port(9300, frozenset({RELAY})) == 9300
    assert metrics_port(0, frozenset({SCHEDULER})) == 0
