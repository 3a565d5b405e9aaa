"""A real HTTP server (uvicorn in a thread) over the API app, and people to sign in as."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from api import people
from api.app import create_app
from api.context import ApiContext
from api.settings import AuthSettings
from tests.helpers import serving

PASSWORD = "correct horse battery"


@dataclass
class Server:
    base: str
    ctx: ApiContext

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=10)


def serve(ctx: ApiContext) -> Iterator[str]:
    app = create_app(ctx)
    with serving(app, access_log=False, timeout_graceful_shutdown=1) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def auth_settings() -> AuthSettings:
    return AuthSettings(stream_recheck_s=0.5)


@pytest.fixture
def server(db_url: str, auth_settings: AuthSettings) -> Iterator[Server]:
    pool = ConnectionPool(db_url, min_size=1, max_size=6, open=True)
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {"database": True, "broker": True})
    ctx.provide(AuthSettings, auth_settings)
    try:
        for base in serve(ctx):
            yield Server(base, ctx)
    finally:
        pool.close()


Person = Callable[..., people.Person]


@pytest.fixture
def person(db: psycopg.Connection[Any]) -> Person:
    """Create an account with PASSWORD."""

    def make(
        login: str = "zhangwei", name: str = "张伟", department: str = "EEB", role: str = "officer"
    ) -> people.Person:
        return people.create_person(db, login, name, department, role, PASSWORD)

    return make


def sign_in(client: httpx.Client, login: str, password: str = PASSWORD, next_: str = "/") -> str:
    """Sign in through the form as a browser does; returns the session's CSRF token."""
    form = client.get("/login")
    assert form.status_code == 200, form.text
    token = client.cookies.get("offsite_login_csrf")
    assert token
    r = client.post(
        "/login",
        data={"login": login, "password": password, "csrf_token": token, "next": next_},
    )
    assert r.status_code == 303, r.text
    me = client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    return str(me.json()["csrf_token"])
