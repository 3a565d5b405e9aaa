"""Single sign-on against a real OpenID provider (Authlib's server) that the test starts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from api.settings import AuthSettings, OidcSettings
from tests.api.conftest import Server
from tests.api.oidc_provider import Provider

pytestmark = pytest.mark.filterwarnings(
    # Authlib's server still imports its own deprecated JOSE module in places.
    "ignore::authlib.deprecate.AuthlibDeprecationWarning"
)

ZHAO = {
    "sub": "u-1001",
    "preferred_username": "zhaomin",
    "name": "赵敏",
    "department": "生态环境局",
    "role": "执法人员",
}


@pytest.fixture
def provider() -> Iterator[Provider]:
    p = Provider()
    p.start()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture
def auth_settings(provider: Provider) -> AuthSettings:
    return AuthSettings(
        oidc=OidcSettings(
            issuer=provider.issuer,
            client_id=provider.client_id,
            departments={"生态环境局": "EEB"},
            roles={"执法人员": "officer", "科长": "admin"},
        )
    )


def _sign_on(c: httpx.Client, provider: Provider, next_: str = "/tasks") -> httpx.Response:
    """The browser's hops: offsite → provider → offsite's callback."""
    r = c.get("/login/oidc", params={"next": next_})
    assert r.status_code == 303, r.text
    to_provider = r.headers["location"]
    assert to_provider.startswith(provider.issuer + "/authorize?")
    query = parse_qs(urlsplit(to_provider).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"][0]
    back = httpx.get(to_provider, follow_redirects=False)
    assert back.status_code == 302, back.text
    callback = back.headers["location"]
    assert callback.startswith(str(c.base_url) + "/login/oidc/callback?")
    return c.get(callback)


def test_single_sign_on_creates_and_maps_the_person(
    server: Server, provider: Provider, db: psycopg.Connection[Any]
) -> None:
    provider.redirect_uri = f"{server.base}/login/oidc/callback"
    provider.user = dict(ZHAO)
    with server.client() as c:
        assert "统一身份认证登录" in c.get("/login").text
        r = _sign_on(c, provider)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/tasks"
        me = c.get("/api/v1/me").json()
        assert me["actor"] == "赵敏 (zhaomin)"
        assert (me["department"], me["role"]) == ("EEB", "officer")
    row = db.execute(
        "SELECT oidc_issuer, oidc_subject, password_hash FROM users WHERE login = 'zhaomin'"
    ).fetchone()
    assert row == (provider.issuer, "u-1001", None)

    # The provider promotes her: the next sign-on carries the new role.
    provider.user = {**ZHAO, "role": "科长"}
    with server.client() as c:
        assert _sign_on(c, provider).status_code == 303
        assert c.get("/api/v1/me").json()["role"] == "admin"
    # A single-sign-on account has no password to guess.
    with server.client() as c:
        c.get("/login")
        token = c.cookies.get("offsite_login_csrf")
        r = c.post("/login", data={"login": "zhaomin", "password": "", "csrf_token": token})
        assert r.status_code in (401, 422)


def test_single_sign_on_refusals(server: Server, provider: Provider) -> None:
    provider.redirect_uri = f"{server.base}/login/oidc/callback"
    # A role the mapping does not know: refused with the reason, no session.
    provider.user = {**ZHAO, "role": "访客"}
    with server.client() as c:
        r = _sign_on(c, provider)
        assert r.status_code == 401
        assert "no valid role" in r.text
        assert c.get("/api/v1/me").status_code == 401
    # The provider's answer arriving in another browser (no state cookie): refused.
    provider.user = dict(ZHAO)
    with server.client() as c, server.client() as other:
        r = c.get("/login/oidc")
        back = httpx.get(r.headers["location"], follow_redirects=False)
        callback = back.headers["location"]
        r = other.get(callback)
        assert r.status_code == 403
        assert other.get("/api/v1/me").status_code == 401
        # The code and state are used once: a replay in the right browser fails too.
        assert c.get(callback).status_code == 303
        c.cookies.set("offsite_oidc_state", parse_qs(urlsplit(callback).query)["state"][0])
        assert c.get(callback).status_code == 401
