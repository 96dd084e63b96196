"""The engine's processes as they are deployed: `recourse worker`, `recourse relay` and
`recourse scheduler`, each a real subprocess with its own connections, plus the relay that
dies between publishing and marking (`tests.e2e.faults.relay_crash`).

Each process connects to PostgreSQL under an application name of its own
(`fault-engine-<role>-<n>`), which is how a fault finds its backends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.faults.servers import ENGINE_APPLICATION_PREFIX, with_application_name

REPO = Path(__file__).resolve().parents[3]
RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]
STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape(port: int, name: str) -> float | None:
    """One sample of a Prometheus metric without labels, or None when unreachable."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


@dataclass
class EngineProcess:
    role: str
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int = 0

    @property
    def application_name(self) -> str:
        return f"{ENGINE_APPLICATION_PREFIX}{self.name}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no handler runs, no transaction commits, no ack goes out."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM and wait: the graceful stop an operator would ask for."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            raise

    def leading(self) -> bool:
        return scrape(self.metrics_port, "recourse_scheduler_leader") == 1


@dataclass
class Cluster:
    """Starts and tracks the engine's processes for one run."""

    database_url: str
    broker_url: str
    logs: Path
    settings: dict[str, str] = field(default_factory=dict)
    processes: list[EngineProcess] = field(default_factory=list)
    _serial: int = 0

    def environment(self, name: str, metrics_port: int) -> dict[str, str]:
        return {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                part for part in (str(REPO), os.environ.get("PYTHONPATH", "")) if part
            ),
            "DATABASE_URL": with_application_name(
                self.database_url, f"{ENGINE_APPLICATION_PREFIX}{name}"
            ),
            "BROKER_URL": self.broker_url,
            "METRICS_PORT": str(metrics_port),
            "LOG_FORMAT": "json",
            **self.settings,
        }

    def start(self, role: str, *args: str, module: str | None = None) -> EngineProcess:
        """Start one process of `role` (`worker`, `relay`, `scheduler`, `relay-crash`)."""
        self._serial += 1
        name = f"{role}-{self._serial}"
        port = free_port() if role in ("worker", "scheduler") else 0
        log = self.logs / f"{name}.log"
        command = [sys.executable, "-m", module, *args] if module else [*RECOURSE, role, *args]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                env=self.environment(name, port),
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        started = EngineProcess(role, name, process, log, port)
        self.processes.append(started)
        return started

    def running(self, role: str) -> list[EngineProcess]:
        return [item for item in self.processes if item.role == role and item.alive]

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every worker and scheduler serves its metrics: its runtime is built."""
        deadline = time.monotonic() + timeout_s
        for item in self.processes:
            if not item.metrics_port:
                continue
            # Every role's endpoint serves the process's own series.
            while scrape(item.metrics_port, "process_start_time_seconds") is None:
                if not item.alive:
                    raise RuntimeError(f"{item.name} exited: {item.log.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{item.name} did not come up")
                time.sleep(0.1)

    def stop_role(self, role: str) -> dict[str, int]:
        """Stop every running process of `role` gracefully; their exit codes by name."""
        return {item.name: item.stop() for item in self.running(role)}

    def kill_all(self) -> None:
        for item in self.processes:
            if item.alive:
                item.kill()
