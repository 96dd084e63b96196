"""Configuration from the environment (pydantic-settings), with the embedded default.

With nothing set, Recourse runs in one process on a SQLite file and Dramatiq's StubBroker;
`DATABASE_URL` and `BROKER_URL` switch the same code to PostgreSQL and RabbitMQ.
"""

from __future__ import annotations

from pathlib import Path

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
    metrics_port: int = Field(default=9191, ge=0, le=65535)


def load_settings() -> Settings:
    return Settings()
