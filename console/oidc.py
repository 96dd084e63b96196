"""Sign-in through OpenID Connect (Authlib's Starlette client), on when OIDC_* are set.

The provider's discovery document gives the endpoints. The authorization code flow carries a
PKCE S256 challenge, a `state` bound to the session and a `nonce` bound to the ID token; Authlib
checks both, and the ID token's signature, issuer, audience and expiry, on the way back. The
claims are the ID token's, completed from the userinfo endpoint when the role or name claim is
not in the ID token (providers release scope claims there; the `sub` must agree). The claim
named by OIDC_ROLE_CLAIM (a string or a list) is looked up in OIDC_ROLE_MAP, and the first value
that maps gives the role. A user whose claims map to no role is refused. The operator's name
(what `decided_by` carries) is the claim OIDC_NAME_CLAIM, `email` by default. Every sign-in and
every refusal is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine

from console import audit
from console.accounts import Operator
from console.errors import Forbidden, NotSignedIn
from console.roles import Role, parse_role
from console.security import OIDC, sign_in
from console.settings import ConsoleSettings


def role_from_claims(claims: dict[str, Any], claim: str, role_map: dict[str, str]) -> Role | None:
    value = claims.get(claim)
    values = [value] if isinstance(value, str) else list(value or [])
    for key, role in role_map.items():
        if key in values:
            return parse_role(role)
    return None


class OidcSignIn:
    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        for role in settings.oidc_role_map.values():
            parse_role(role)  # a typo in the map fails at start, not at someone's sign-in
        self.oauth = OAuth()
        self.oauth.register(
            name="oidc",
            server_metadata_url=(
                f"{(settings.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration"
            ),
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
        )

    def add_routes(self, app: FastAPI, engine: Engine, clock: Callable[[], datetime]) -> None:
        client = self.oauth.create_client("oidc")
        settings = self.settings

        @app.get("/signin/oidc")
        async def oidc_start(request: Request) -> Any:
            return await client.authorize_redirect(request, request.url_for("oidc_callback"))

        @app.get("/signin/oidc/callback", name="oidc_callback")
        async def oidc_callback(request: Request) -> RedirectResponse:
            try:
                token = await client.authorize_access_token(request)
            except OAuthError as exc:
                raise NotSignedIn(f"the identity provider refused: {exc.error}") from None
            claims = dict(token.get("userinfo") or {})
            if settings.oidc_role_claim not in claims or settings.oidc_name_claim not in claims:
                extra = dict(await client.userinfo(token=token))
                if extra.get("sub") != claims.get("sub"):
                    raise NotSignedIn("the identity provider's userinfo names another subject")
                claims = {**extra, **claims}
            name = str(claims.get(settings.oidc_name_claim) or claims.get("sub") or "")
            role = role_from_claims(claims, settings.oidc_role_claim, settings.oidc_role_map)
            with engine.begin() as conn:
                audit.record(
                    conn,
                    at=clock(),
                    operator=name,
                    action="signin" if role else "signin.refused",
                    subject=name,
                    details={"source": OIDC, "role": role.value if role else None},
                )
            if role is None or not name:
                raise Forbidden(f"{name or 'this account'} has no console role")
            sign_in(request.session, Operator(name, role), OIDC)
            return RedirectResponse("/disputes", status_code=303)
