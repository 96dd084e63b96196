"""The console's configuration, from the environment like the engine's (`workers.settings`)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

FOUR_EYES_ABOVE_MINOR = 50_000
"""docs/policy.md OP-2's default: a decision that moves more than this needs a second operator."""


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    console_host: str = Field(default="127.0.0.1", description="Address the console binds.")
    console_port: int = Field(default=8080, ge=1, le=65535)
    console_secret_key: str | None = Field(
        default=None,
        min_length=32,
        description="Signs the session cookies; required unless the console runs embedded.",
    )
    console_broker_url: str | None = Field(
        default=None,
        description="Where decisions are published (default: BROKER_URL); unset with no "
        "BROKER_URL means embedded: decisions are applied in this process.",
    )
    console_idle_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A session idle this long signs out."
    )
    console_secure_cookies: bool = Field(
        default=False, description="Send the session cookie over HTTPS only (behind TLS)."
    )
    console_four_eyes_above_minor: int = Field(
        default=FOUR_EYES_ABOVE_MINOR,
        ge=0,
        description="OP-2: decisions moving more than this to or from a party need approval.",
    )
    console_signin_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins per name that lock the name for a while."
    )
    console_signin_window_minutes: int = Field(default=15, ge=1)
    oidc_issuer: str | None = Field(
        default=None, description="OpenID Connect issuer URL; with the two below, enables SSO."
    )
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_scopes: str = Field(
        default="openid email profile",
        description="Scopes asked for; add the one that releases the role claim (e.g. groups).",
    )
    oidc_role_claim: str = Field(
        default="groups", description="The ID token claim (a string or a list) mapped to a role."
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description='JSON: claim value -> role, e.g. {"disputes": "dispute_team"}.',
    )
    oidc_name_claim: str = Field(
        default="email", description="The claim that names the operator (decided_by)."
    )

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)


def load_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
