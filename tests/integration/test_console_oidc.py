"""Sign-in through OpenID Connect against a real, standard provider: panva's oidc-provider
(OpenID Certified, tests/oidc-provider/, installed by `npm ci`) on a local port, and the
console on a real uvicorn. The whole redirect dance runs over HTTP: the authorization code
flow with PKCE, state and nonce; the role from the `groups` claim (released by userinfo);
a user whose groups map to no role refused; a forged state refused; each sign-in audited."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from console_driver import CHEAP_HASHER, console_app, free_port, seed, served_over_http
from sqlalchemy import Engine

import console.accounts
from console import audit

pytestmark = pytest.mark.postgres

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc-provider"
CLIENT_ID = "recourse-console"
CLIENT_SECRET = "a-test-secret-of-the-console-client"
ACCOUNTS = {
    "carol": {"email": "carol@example.test", "email_verified": True, "groups": ["disputes"]},
    "mallory": {"email": "mallory@example.test", "email_verified": True, "groups": ["sales"]},
}


@dataclass(frozen=True, slots=True)
class Site:
    console: str
    provider: str


@pytest.fixture
def site(pg_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr(console.accounts, "_HASHER", CHEAP_HASHER)
    seed(pg_engine)
    console_port, provider_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(provider_port),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URI": f"http://127.0.0.1:{console_port}/signin/oidc/callback",
        "ACCOUNTS": json.dumps(ACCOUNTS),
    }
    provider = subprocess.Popen(
        ["node", "provider.js"],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert provider.stdout is not None
        first = provider.stdout.readline()
        assert first.startswith("listening"), f"the provider did not start: {first!r}"
        issuer = f"http://127.0.0.1:{provider_port}"
        app = console_app(
            pg_engine,
            oidc_issuer=issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_scopes="openid email groups",
            oidc_role_map={"disputes": "dispute_team", "support": "support"},
        )
        with served_over_http(app, console_port) as base_url:
            yield Site(base_url, issuer)
    finally:
        provider.terminate()
        provider.wait(timeout=10)


FORM = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def through_provider(client: httpx.Client, answer: httpx.Response, site: Site, login: str) -> str:
    """Follow the provider's redirects and fill its login and consent forms until it sends
    the browser back to the console; return that callback URL."""
    for _ in range(12):
        if answer.is_redirect:
            target = urljoin(str(answer.url), answer.headers["location"])
            if target.startswith(site.console):
                return target
            answer = client.get(target)
            continue
        assert answer.status_code == 200, answer.text
        found = FORM.search(answer.text)
        assert found is not None, answer.text[-2000:]
        fields = dict(HIDDEN.findall(found.group(2)))
        if fields.get("prompt") == "login":
            fields.update(login=login, password="the dev form takes any")
        answer = client.post(urljoin(str(answer.url), found.group(1)), data=fields)
    raise AssertionError("the provider never sent the browser back")


def start(client: httpx.Client, site: Site) -> tuple[httpx.Response, dict[str, list[str]]]:
    answer = client.get(f"{site.console}/signin/oidc")
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(f"{site.provider}/auth?")
    return answer, parse_qs(urlsplit(location).query)


def test_an_operator_signs_in_through_the_provider_with_the_role_of_their_group(
    site: Site, pg_engine: Engine
) -> None:
    with httpx.Client() as browser:
        answer, asked = start(browser, site)
        assert asked["response_type"] == ["code"]
        assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
        assert asked["state"][0] and asked["nonce"][0]
        callback = through_provider(browser, answer, site, "carol")
        back = parse_qs(urlsplit(callback).query)
        assert back["state"] == asked["state"] and back["code"][0]
        signed_in = browser.get(callback)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/disputes"
        queue = browser.get(f"{site.console}/disputes")
        assert queue.status_code == 200 and "carol@example.test" in queue.text
        assert browser.get(f"{site.console}/api/v1/disputes").json()["disputes"]
        # The role is dispute_team's: the audit log (finance and admin only) stays closed.
        assert browser.get(f"{site.console}/api/v1/audit").status_code == 403
        # A stolen redirect signs nobody in elsewhere: the state is bound to this session.
        replayed = httpx.get(callback)
        assert replayed.status_code == 303 and replayed.headers["location"].startswith("/signin")
    with pg_engine.connect() as conn:
        (entry,) = [item for item in audit.entries(conn) if item.operator == "carol@example.test"]
    assert entry.action == "signin"
    assert entry.details == {"source": "oidc", "role": "dispute_team"}


def test_a_user_whose_groups_map_to_no_role_is_refused_and_audited(
    site: Site, pg_engine: Engine
) -> None:
    with httpx.Client() as browser:
        answer, _ = start(browser, site)
        refused = browser.get(through_provider(browser, answer, site, "mallory"))
        assert refused.status_code == 403
        assert "has no console role" in refused.text
        assert browser.get(f"{site.console}/disputes").status_code == 303
        assert browser.get(f"{site.console}/api/v1/disputes").status_code == 401
    with pg_engine.connect() as conn:
        (entry,) = [item for item in audit.entries(conn) if item.subject == "mallory@example.test"]
    assert entry.action == "signin.refused" and entry.details["role"] is None


def test_a_callback_whose_state_is_not_the_sessions_is_refused(site: Site) -> None:
    with httpx.Client() as browser:
        answer, asked = start(browser, site)
        callback = through_provider(browser, answer, site, "carol")
        forged = callback.replace(asked["state"][0], "forged-state")
        refused = browser.get(forged)
        assert refused.status_code == 303 and refused.headers["location"].startswith("/signin")
        assert browser.get(f"{site.console}/disputes").status_code == 303
