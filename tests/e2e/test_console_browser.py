"""The console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`) drives the running console over HTTP against PostgreSQL. An operator signs
in, opens the queue, opens an overdue dispute, watches the live preview of a partial refund
(computed by the engine's refund code), decides it, and sees the decision recorded."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from console_driver import CHEAP_HASHER, PASSWORD, console_app, seed
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

import console.accounts
from ledger import Book

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

WAIT_S = 15


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def console_url(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(console_app(pg_engine), host="127.0.0.1", port=port, log_level="warning")
    )
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
