"""The console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) drives the running console over HTTP against PostgreSQL.

Embedded, an operator signs in, opens an overdue dispute, watches the live preview of a
partial refund (computed by the engine's refund code), decides it, and sees it recorded. With
RabbitMQ and a `recourse worker` process, a partial refund above the four-eyes threshold is
proposed by one operator, refused to her own approval, approved by a second, published to the
broker and booked by the worker; the ledger and the audit log show it. That test also takes
the screenshots of the queue and of a dispute that docs/console.md shows."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
import uvicorn
from console_driver import CHEAP_HASHER, NOW, PASSWORD, SECRET, console_app, seed
from fastapi import FastAPI
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

import console.accounts
from console.app import create_app
from console.publishing import broker_publisher
from console.settings import ConsoleSettings
from ledger import Book
from messages.transport import declare_intake
from policy.config import load_policies

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

WAIT_S = 15
WORKER_WAIT_S = 60
DOCS = Path(__file__).resolve().parents[2] / "docs"
RECOURSE = [sys.executable, "-c", "from workers.cli import app; app()"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` over HTTP on a free port in a thread until the test is done."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=WAIT_S)


@pytest.fixture
def console_url(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The embedded console: decisions applied in its own process."""
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    yield from _serve(console_app(pg_engine))


@pytest.fixture
def brokered_console_url(
    pg_engine: Engine, pg_url: str, rabbit_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    """The console as deployed: it publishes decisions to RabbitMQ, and a `recourse worker`
    process takes them in and applies them."""
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    # The engine's topology first: the console publishes with `mandatory`, and a decision
    # sent before the worker declared its queue would be refused as unroutable.
    connection = pika.BlockingConnection(pika.URLParameters(rabbit_url))
    declare_intake(connection.channel())
    connection.close()
    env = {**os.environ, "DATABASE_URL": pg_url, "BROKER_URL": rabbit_url, "METRICS_PORT": "0"}
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen([*RECOURSE, "worker"], env=env, stdout=log, stderr=log)
    policies = load_policies()
    app = create_app(
        pg_engine,
        policies,
        broker_publisher(rabbit_url),
        ConsoleSettings(),
        secret_key=SECRET,
        clock=lambda: NOW,
    )
    try:
        yield from _serve(app)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=WAIT_S)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        message = (
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message}: CI needs them", pytrace=False)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1000")  # the screenshots' size
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(WAIT_S)
    yield driver
    driver.quit()


def test_an_operator_decides_a_partial_refund_in_the_browser(
    console_url: str, browser: WebDriver, pg_engine: Engine
) -> None:
    """OP-1 end to end: the decision taken in the page is booked and names its operator."""
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{console_url}/disputes")
    wait.until(expected_conditions.url_contains("/signin"))
    browser.find_element(By.ID, "name").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "signin").click()

    queue = wait.until(expected_conditions.presence_of_element_located((By.ID, "queue")))
    assert "overdue" in queue.text
    browser.find_element(By.LINK_TEXT, "d1").click()

    wait.until(expected_conditions.presence_of_element_located((By.ID, "decision")))
    assert "overdue" in browser.find_element(By.ID, "status").text
    assert "No evidence recorded." in browser.find_element(By.ID, "evidence").text
    browser.find_element(By.ID, "outcome-partial_refund").click()
    browser.find_element(By.ID, "amount_minor").send_keys("20000")
    wait.until(
        expected_conditions.text_to_be_present_in_element((By.ID, "client-receives"), "208.00")
    )
    assert "276.00" in browser.find_element(By.ID, "creator-receives").text
    browser.find_element(By.ID, "reason").send_keys("half of the work was delivered")
    browser.find_element(By.ID, "decide").click()

    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "status"), "resolved"))
    assert "partial_refund" in browser.find_element(By.ID, "status").text
    assert "alice" in browser.find_element(By.ID, "dispute-audit").text
    with pg_engine.connect() as conn:
        assert Book(conn).balance("user:ana", "USD").available_minor == 20800


def _sign_in(browser: WebDriver, console_url: str, name: str) -> None:
    wait = WebDriverWait(browser, WAIT_S)
    browser.get(f"{console_url}/signin")
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "signin").click()
    wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "whoami"), name))


def _sign_out(browser: WebDriver) -> None:
    browser.find_element(By.CSS_SELECTOR, "form.signout button").click()
    WebDriverWait(browser, WAIT_S).until(expected_conditions.url_contains("/signin"))


@pytest.mark.rabbitmq
def test_four_eyes_in_the_browser_a_second_operator_approves_and_the_worker_books_it(
    brokered_console_url: str, browser: WebDriver, pg_engine: Engine
) -> None:
    """OP-2 end to end over RabbitMQ: alice proposes a partial refund of d2 above the
    threshold, cannot approve it herself, bob approves it, the worker books the split."""
    url = brokered_console_url
    wait = WebDriverWait(browser, WAIT_S)
    _sign_in(browser, url, "alice")
    browser.get(f"{url}/disputes?status=overdue")
    queue = wait.until(expected_conditions.presence_of_element_located((By.ID, "queue")))
    row = queue.find_element(By.XPATH, ".//tr[td/a[text()='d2']]")
    assert "overdue" in row.get_attribute("class").split()
    browser.save_screenshot(str(DOCS / "console-queue.png"))
    row.find_element(By.LINK_TEXT, "d2").click()

    wait.until(expected_conditions.presence_of_element_located((By.ID, "decision")))
    assert "overdue" in browser.find_element(By.ID, "status").text
    browser.find_element(By.ID, "outcome-partial_refund").click()
    browser.find_element(By.ID, "amount_minor").send_keys("60000")
    wait.until(expected_conditions.presence_of_element_located((By.ID, "needs-approval")))
    client_share = browser.find_element(By.ID, "client-receives").text
    creator_share = browser.find_element(By.ID, "creator-receives").text
    assert (client_share, creator_share) == ("624.00 USD", "276.00 USD")
    browser.find_element(By.ID, "reason").send_keys("two thirds of the files were wrong")
    # The case from its top to the preview, in one picture.
    browser.set_window_size(1280, 1500)
    # No focus: a blinking caret would make each run's picture differ.
    browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
    browser.save_screenshot(str(DOCS / "console-dispute.png"))
    browser.find_element(By.ID, "decide").click()

    proposals = wait.until(expected_conditions.presence_of_element_located((By.ID, "proposals")))
    assert "pending" in proposals.text and "alice" in proposals.text
    proposal_id = proposals.find_element(By.CSS_SELECTOR, "tbody td").text
    browser.get(f"{url}/proposals")
    assert "(yours: another operator approves it)" in browser.find_element(By.ID, "proposals").text
    assert not browser.find_elements(By.CSS_SELECTOR, "button.approve")
    # Not a matter of a hidden button: the server refuses alice's approval, token and all.
    refused = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const form = new FormData();
        form.append("csrf_token", document.querySelector("input[name=csrf_token]").value);
        fetch(arguments[0], {method: "POST", body: form, redirect: "manual"})
            .then(answer => done(answer.status));
        """,
        f"/proposals/{proposal_id}/approve",
    )
    assert refused == 403
    _sign_out(browser)

    _sign_in(browser, url, "bob")
    browser.get(f"{url}/proposals")
    browser.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait.until(expected_conditions.url_contains("/proposals"))
    # The approval is published to RabbitMQ; the worker applies it.
    browser.get(f"{url}/disputes/d2")
    WebDriverWait(browser, WORKER_WAIT_S).until(_refreshed_until_resolved)
    assert "partial_refund" in browser.find_element(By.ID, "status").text
    money = browser.find_element(By.CSS_SELECTOR, "table.transfers").text
    assert "user:cat" in money and "user:dan" in money
    with pg_engine.connect() as conn:
        book = Book(conn)
        assert book.balance("user:cat", "USD").available_minor == 62400
        assert book.balance("user:dan", "USD").available_minor == 27600
    _sign_out(browser)

    _sign_in(browser, url, "ada")
    browser.get(f"{url}/audit")
    trail = browser.find_element(By.ID, "audit").text
    assert "alice decision.proposed d2" in trail and "bob decision.approved d2" in trail


def _refreshed_until_resolved(browser: WebDriver) -> bool:
    browser.refresh()
    return "resolved" in browser.find_element(By.ID, "status").text
