"""`recourse console`: the composition root that builds the app from the environment."""

from __future__ import annotations

import secrets

import structlog
from fastapi import FastAPI

from console.app import create_app
from console.decisions import Publisher
from console.publishing import broker_publisher, embedded_publisher, swept_intake
from console.settings import ConsoleSettings
from policy.config import load_policies
from workers.database import make_engine, migrate
from workers.dlq import Submitter
from workers.intake.producers import load_producers
from workers.operator.errors import UsageProblem
from workers.preflight import check_broker, check_database
from workers.settings import Settings

log = structlog.get_logger(__name__)


def build_app(settings: Settings, console: ConsoleSettings) -> FastAPI:
    """The console on the engine's database; embedded when no broker is configured."""
    policies = load_policies(settings.policy_file, settings.default_policy)
    engine = make_engine(settings.database_url)
    broker_url = console.console_broker_url or settings.broker_url
    publisher: Publisher
    resubmit: Submitter | None = None  # a retried dead letter: the embedded intake
    if broker_url is None:
        # Embedded: one process, its SQLite file; decisions are applied here, at once.
        migrate(engine)
        publisher = embedded_publisher(engine, policies)
        secret_key = console.console_secret_key or secrets.token_urlsafe(48)
    else:
        if console.console_secret_key is None:
            raise UsageProblem(
                "CONSOLE_SECRET_KEY is not set",
                "set it to a random string of 32 or more characters (it signs the sessions), "
                'e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"',
            )
        # Like the engine's processes: a database or broker it cannot use is one line at start.
        check_database(settings.database_url)
        check_broker(
            broker_url,
            setting="CONSOLE_BROKER_URL" if console.console_broker_url else "BROKER_URL",
        )
        publisher = broker_publisher(broker_url)
        # As `recourse dlq retry`: the producers' rules, and the workers drain the retry.
        resubmit = swept_intake(
            engine, load_producers(settings.producers_file, settings.engine_user)
        )
        secret_key = console.console_secret_key
    log.info("console.starting", embedded=broker_url is None, oidc=console.oidc_enabled)
    return create_app(
        engine, policies, publisher, console, secret_key=secret_key, resubmit=resubmit
    )


def serve(settings: Settings, console: ConsoleSettings) -> None:
    import uvicorn

    app = build_app(settings, console)
    uvicorn.run(
        app,
        host=console.console_host,
        port=console.console_port,
        proxy_headers=True,
        log_config=None,
    )
