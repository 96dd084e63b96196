"""Configuration from the environment (pydantic-settings), with the embedded default.

With nothing set, Recourse runs in one process on a SQLite file and Dramatiq's StubBroker;
`DATABASE_URL` and `BROKER_URL` switch the same code to PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite:///recourse.sqlite",
        description="SQLAlchemy URL: sqlite:///FILE (embedded) or postgresql+psycopg://...",
    )
    broker_url: str | None = Field(
        default=None,
        description="amqp://user:pass@host:5672/vhost; unset means the in-process StubBroker.",
    )
    default_policy: str = Field(
        default="spectrum", description="Preset for contracts whose contract.opened names none."
    )
    policy_file: Path | None = Field(
        default=None, description="A TOML file whose values override the presets."
    )
    log_format: str = Field(
        default="auto", description="json, console, or auto (console on a tty)."
    )
    log_level: str = Field(default="INFO")
    tick_interval_seconds: float = Field(default=60.0, gt=0)
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Port of the metrics endpoint; 0 for none; unset: the role's own "
        "(worker 9191, relay 9190, scheduler 9189: workers.metrics_ports).",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Address the metrics endpoint listens on; 0.0.0.0 for every interface.",
    )
    worker_threads: int = Field(default=8, ge=1, description="Worker threads per process.")
    unknown_subject_retry_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How long an event naming a subject not seen yet is retried before it is "
        "dead-lettered (`unknown_subject`): the event it waits for may still be on its way.",
    )
    retry_min_backoff_ms: int = Field(default=500, gt=0, description="First retry delay.")
    retry_max_backoff_ms: int = Field(
        default=60_000,
        gt=0,
        # A delayed retry is held unacked by the worker; RabbitMQ's consumer timeout (30 min by
        # default) would requeue it and close the channel if one delay came near it.
        le=600_000,
        description="Cap of one retry delay; far below RabbitMQ's consumer timeout.",
    )
    error_max_retries: int = Field(
        default=5, ge=0, description="Retries of an unexpected handler error before dead-lettering."
    )
    producers_file: Path | None = Field(
        default=None,
        description="A TOML file naming the event types each broker user may publish; unset: "
        "every user may publish every type but deadline.tick.",
    )
    tick_lateness_seconds: float = Field(
        default=300.0,
        ge=0,
        description="A scheduler tick at wall time T fires the deadlines due by T minus this, so "
        "an event stamped just before a deadline and delayed in transit is judged inside it.",
    )
    apply_batch_size: int = Field(
        default=16,
        ge=1,
        description="Events a drain applies in one transaction. Each takes a savepoint: past "
        "64 subtransactions in one transaction PostgreSQL's snapshots slow down for everyone.",
    )
    intake_batch_size: int = Field(
        default=48,
        ge=1,
        description="Messages the intake appends (and, with APPLY_ON_INTAKE, applies) in one "
        "transaction. Each event applied takes a savepoint: keep it under 64.",
    )
    apply_on_intake: bool = Field(
        default=True,
        description="Apply each batch in the transaction that appends it, where no drain holds "
        "the partition (group commit); the drains take what is left. Off: the drains apply "
        "everything.",
    )
    sweep_seconds: float = Field(
        default=2.0,
        gt=0,
        description="How often a worker looks for waiting work whose nudge was lost.",
    )
    relay_batch_size: int = Field(default=200, ge=1, description="Outbox rows per relay claim.")
    relay_idle_seconds: float = Field(
        default=0.5, gt=0, description="How long the relay waits when the outbox is empty."
    )

    @property
    def engine_user(self) -> str:
        """The engine's own broker user (of BROKER_URL): the one that may publish ticks."""
        if not self.broker_url:
            return EMBEDDED_USER
        return unquote(urlparse(self.broker_url).username or "guest")


EMBEDDED_USER = "recourse"
"""The producer the embedded mode records for what it takes in-process."""


def load_settings() -> Settings:
    return Settings()
