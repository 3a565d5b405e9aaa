"""OpenID Connect single sign-on: authorization code with PKCE, ID token checked, claims mapped."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from api import people
from api.roles import Role
from api.settings import OidcSettings

log = logging.getLogger(__name__)

ATTEMPT_TTL_S = 600
_DISCOVERY_TTL_S = 300


class OidcError(Exception):
    """Single sign-on failed; the message is safe to show the person."""


@dataclass(frozen=True, slots=True)
class Provider:
    """The parts of the provider's discovery document the flow uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


class OidcClient:
    """One configured provider. Discovery and keys are cached for a few minutes."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._provider: tuple[float, Provider] | None = None

    def provider(self) -> Provider:
        now = time.monotonic()
        if self._provider is not None and now - self._provider[0] < _DISCOVERY_TTL_S:
            return self._provider[1]
        url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            doc = httpx.get(url, timeout=10).raise_for_status().json()
        except (httpx.HTTPError, ValueError) as err:
            raise OidcError(f"the sign-on provider cannot be reached ({url}): {err}") from err
        if doc.get("issuer") != self.settings.issuer:
            raise OidcError(
                f"the provider says its issuer is {doc.get('issuer')!r},"
                f" not {self.settings.issuer!r}"
            )
        provider = Provider(
            doc["issuer"], doc["authorization_endpoint"], doc["token_endpoint"], doc["jwks_uri"]
        )
        self._provider = (now, provider)
        return provider

    def start(
        self, conn: psycopg.Connection[Any], redirect_uri: str, next_: str
    ) -> tuple[str, str]:
        """The provider's authorization URL and the state to keep in the browser."""
        provider = self.provider()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = generate_token(64)
        conn.execute(
            "DELETE FROM oidc_logins WHERE created_at < now() - make_interval(secs => %s)",
            (ATTEMPT_TTL_S,),
        )
        conn.execute(
            "INSERT INTO oidc_logins (state, nonce, code_verifier, next) VALUES (%s, %s, %s, %s)",
            (state, nonce, verifier, next_),
        )
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": self.settings.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        return f"{provider.authorization_endpoint}?{urlencode(query)}", state

    def finish(
        self, conn: psycopg.Connection[Any], redirect_uri: str, code: str, state: str
    ) -> tuple[people.Person, str]:
        """Exchange the code, check the ID token, map the claims: the person and `next`."""
        row = conn.execute(
            "DELETE FROM oidc_logins WHERE state = %s"
            " AND created_at > now() - make_interval(secs => %s)"
            " RETURNING nonce, code_verifier, next",
            (state, ATTEMPT_TTL_S),
        ).fetchone()
        if row is None:
            raise OidcError("the sign-on attempt is unknown or has expired: start again")
        nonce, verifier, next_ = row
        provider = self.provider()
        s = self.settings
        client = OAuth2Client(
            client_id=s.client_id,
            client_secret=s.client_secret or None,
            token_endpoint_auth_method="client_secret_post" if s.client_secret else "none",
            redirect_uri=redirect_uri,
            timeout=10,
        )
        try:
            with client:
                token = client.fetch_token(
                    provider.token_endpoint, code=code, code_verifier=verifier
                )
                jwks = client.get(provider.jwks_uri).raise_for_status().json()
        except Exception as err:  # Authlib raises its own and httpx's errors here
            raise OidcError(f"the sign-on provider refused the code: {err}") from err
        id_token = token.get("id_token")
        if not id_token:
            raise OidcError("the provider returned no ID token (is 'openid' in the scope?)")
        try:
            decoded = jwt.decode(id_token, KeySet.import_key_set(jwks))
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": s.client_id},
                sub={"essential": True},
                nonce={"essential": True, "value": nonce},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as err:
            raise OidcError(f"the ID token did not verify: {err}") from err
        return self._person(conn, provider.issuer, decoded.claims), str(next_)

    def _person(
        self, conn: psycopg.Connection[Any], issuer: str, claims: dict[str, Any]
    ) -> people.Person:
        s = self.settings
        subject = str(claims["sub"])
        login = str(claims.get(s.login_claim) or "").lower()
        name = str(claims.get(s.name_claim) or login)
        dept_value = str(claims.get(s.department_claim) or "")
        role_value = str(claims.get(s.role_claim) or "")
        department = s.departments.get(dept_value, dept_value)
        role_text = s.roles.get(role_value, role_value)
        try:
            role = Role(role_text)
        except ValueError:
            raise OidcError(
                f"the provider gives no valid role for {login or subject}"
                f" (claim {s.role_claim!r} = {role_value!r})"
            ) from None
        try:
            existing = people.by_oidc(conn, issuer, subject)
            if existing is None:
                person = people.create_person(
                    conn, login, name, department, role.value, None, oidc=(issuer, subject)
                )
                log.info("created %s (%s) from single sign-on", login, department)
            else:
                person = people.update_from_claims(conn, existing.id, name, department, role)
        except people.PersonError as err:
            raise OidcError(f"the account cannot be used: {err}") from err
        if not person.active:
            raise OidcError("the account is disabled")
        return person
