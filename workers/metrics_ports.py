"""Which port a process's metrics endpoint takes when METRICS_PORT is not set.

Each role has a default of its own, so that a worker, a relay and a scheduler started on one
host with no settings at all do not fight over one port. The worker keeps 9191 (the port every
release before had) and `--processes N` counts up from it (9191, 9192, ...); the relay and the
scheduler count down from it, out of the workers' way. `recourse run` is one process with
every role and takes the worker's port. The console serves HTTP on CONSOLE_PORT (8080) and no
metrics endpoint.
"""

from __future__ import annotations

from workers.metrics import RELAY, SCHEDULER, WORKER

DEFAULT_METRICS_PORTS = {WORKER: 9191, RELAY: 9190, SCHEDULER: 9189}
"""Role -> its metrics port when METRICS_PORT is unset."""


def metrics_port(configured: int | None, roles: frozenset[str]) -> int:
    """METRICS_PORT when set (0: no endpoint), else the default of the one role `roles` names;
    a process of several roles (`recourse run`) takes the worker's."""
    if configured is not None:
        return configured
    if len(roles) == 1:
        (role,) = roles
        return DEFAULT_METRICS_PORTS[role]
    return DEFAULT_METRICS_PORTS[WORKER]
