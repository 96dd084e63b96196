"""`./scripts/demo --console`: the demo's story replayed embedded, demo operators printed, and
the console serving that store over HTTP until it is stopped."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

DEMO = Path(__file__).resolve().parents[2] / "scripts" / "demo"
WAIT_S = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _printed_until_served(demo: subprocess.Popen[str]) -> str:
    """What the demo printed up to the line that says where the console is."""
    assert demo.stdout is not None
    printed = []
    for line in demo.stdout:
        printed.append(line)
        if line.startswith("console: http://"):
            return "".join(printed)
    raise AssertionError(f"the demo ended before serving the console:\n{''.join(printed)}")


def _answering(url: str) -> httpx.Response:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            return httpx.get(url, timeout=5.0)
        except httpx.TransportError:
            assert time.monotonic() < deadline, f"nothing answered at {url}"
            time.sleep(0.2)


def test_the_console_demo_serves_the_demo_story_to_its_printed_operators(tmp_path: Path) -> None:
    port = _free_port()
    database = tmp_path / "demo.sqlite"
    env = {**os.environ, "RECOURSE_PYTHON": sys.executable}
    demo = subprocess.Popen(
        [str(DEMO), "--console", "--port", str(port), "--db", str(database)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = _printed_until_served(demo)
        assert re.search(r"spectrum-week\.jsonl into .*demo\.sqlite: 39 events read", printed)
        password = re.search(r"password for each: (\S+)\):", printed)
        assert password is not None, printed
        assert re.search(r"^  dave +dispute_team$", printed, re.MULTILINE)
        base = f"http://127.0.0.1:{port}"
        signin = _answering(f"{base}/signin")
        assert signin.status_code == 200
        with httpx.Client(base_url=base) as client:
            form = client.get("/signin").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            signed = client.post(
                "/signin",
                data={"name": "dana", "password": password.group(1), "csrf_token": token.group(1)},
            )
            assert signed.status_code == 303 and signed.headers["location"] == "/disputes"
            queue = client.get("/disputes", params={"status": "all"})
            assert queue.status_code == 200
            assert "d-banner" in queue.text  # the story's dispute
            story = client.get("/contracts/c-banner")
            assert story.status_code == 200 and "dispute.opened" in story.text
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait(timeout=WAIT_S)
    assert demo.returncode == 0
