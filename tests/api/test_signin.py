"""Sign-in over real HTTP: passwords, sessions in cookies, CSRF, rate limiting, sign-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from api import people
from api.auth import create_key
from api.routers.signin import safe_next
from api.settings import AuthSettings
from tests.api.conftest import PASSWORD, Person, Server, sign_in


def _login_form(client: Any) -> str:
    client.get("/login")
    return str(client.cookies.get("offsite_login_csrf"))


def test_sign_in_sets_a_safe_session_cookie_and_names_the_person(
    server: Server, person: Person, db: psycopg.Connection[Any]
) -> None:
    person()
    with server.client() as c:
        page = c.get("/login")
        assert page.status_code == 200
        assert "登录" in page.text
        assert 'name="csrf_token"' in page.text
        token = c.cookies.get("offsite_login_csrf")
        r = c.post(
            "/login",
            data={"login": "ZhangWei", "password": PASSWORD, "csrf_token": token, "next": "/a/5"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/a/5"
        cookie = r.headers["set-cookie"].lower()
        assert "offsite_session=" in cookie
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "path=/" in cookie
        assert "secure" not in cookie  # the site is http here (auth.https is off)
        me = c.get("/api/v1/me").json()
        assert me["actor"] == "张伟 (zhangwei)"
        assert (me["kind"], me["department"], me["role"]) == ("person", "EEB", "officer")
        assert len(me["csrf_token"]) >= 32
        # Already signed in: /login sends the browser on.
        assert c.get("/login?next=/tasks").headers["location"] == "/tasks"
    # Only the hash of the cookie value is stored.
    stored = db.execute("SELECT token_hash FROM sessions").fetchone()
    assert stored is not None
    assert stored[0] != c.cookies.get("offsite_session")
    hashed = db.execute("SELECT password_hash FROM users").fetchone()
    assert hashed is not None
    assert hashed[0].startswith("$argon2id$")


@pytest.fixture
def https_settings() -> AuthSettings:
    return AuthSettings(https=True)


def test_cookie_is_secure_when_the_site_is_https(
    db_url: str, person: Person, https_settings: AuthSettings
) -> None:
    from prometheus_client import CollectorRegistry
    from psycopg_pool import ConnectionPool

    from api.context import ApiContext
    from tests.api.conftest import serve

    person()
    pool = ConnectionPool(db_url, min_size=1, max_size=2, open=True)
    ctx = ApiContext(pool, CollectorRegistry(), lambda: {})
    ctx.provide(AuthSettings, https_settings)
    try:
        for base in serve(ctx):
            with Server(base, ctx).client() as c:
                c.get("/login")
                # httpx keeps Secure cookies away from http://, so read the header itself.
                form = c.get("/login")
                set_cookie = form.headers["set-cookie"].lower()
                assert "secure" in set_cookie
                token = set_cookie.split("offsite_login_csrf=")[1].split(";")[0]
                c.cookies.set("offsite_login_csrf", token, path="/login")
                r = c.post(
                    "/login", data={"login": "zhangwei", "password": PASSWORD, "csrf_token": token}
                )
                assert r.status_code == 303
                assert "secure" in r.headers["set-cookie"].lower()
    finally:
        pool.close()


def test_a_failed_sign_in_does_not_say_which_part_was_wrong(server: Server, person: Person) -> None:
    person()
    person(login="lisi", name="李四")
    people_disabled = server.ctx.pool
    with people_disabled.connection() as conn:
        people.disable(conn, "lisi")
    with server.client() as c:
        answers = []
        for login, password in (("zhangwei", "wrong password"), ("nobody", PASSWORD),
                                ("lisi", PASSWORD)):  # fmt: skip
            token = _login_form(c)
            r = c.post("/login", data={"login": login, "password": password, "csrf_token": token})
            answers.append((r.status_code, "登录名或密码不正确" in r.text))
            assert "offsite_session" not in c.cookies
        assert answers == [(401, True)] * 3
        assert c.get("/api/v1/me").status_code == 401


def test_the_sign_in_form_needs_its_own_token(server: Server, person: Person) -> None:
    person()
    with server.client() as c:
        r = c.post("/login", data={"login": "zhangwei", "password": PASSWORD, "csrf_token": "x"})
        assert r.status_code == 403
        assert "页面已过期" in r.text
        assert "offsite_session" not in c.cookies


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/alerts/5?x=1", "/alerts/5?x=1"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("alerts", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_is_honoured_only_for_paths_of_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_next_from_the_query_survives_the_form(server: Server, person: Person) -> None:
    person()
    with server.client() as c:
        page = c.get("/login", params={"next": "https://evil.example/"})
        assert 'name="next" value="/"' in page.text
        page = c.get("/login", params={"next": "/alerts/7"})
        assert 'name="next" value="/alerts/7"' in page.text


def test_unsafe_requests_by_cookie_need_the_csrf_token(
    server: Server, person: Person, db: psycopg.Connection[Any]
) -> None:
    person(role="admin")
    with server.client() as c:
        token = sign_in(c, "zhangwei")
        # /rules/reload is an admin POST; the rule service is not running here (503).
        r = c.post("/api/v1/rules/reload")
        assert r.status_code == 403
        assert "CSRF" in r.json()["detail"]
        r = c.post("/api/v1/rules/reload", headers={"X-CSRF-Token": "not the token"})
        assert r.status_code == 403
        r = c.post("/api/v1/rules/reload", headers={"X-CSRF-Token": token})
        assert r.status_code == 503, r.text
        # The form field works too (HTML forms cannot set headers).
        r = c.post("/api/v1/rules/reload", data={"csrf_token": token})
        assert r.status_code == 503, r.text
        # Reads need no token.
        assert c.get("/api/v1/me").status_code == 200
    # A machine with a key is not a browser: no token needed.
    key = create_key(db, "EEB", "admin", "reloader")
    with server.client() as m:
        r = m.post("/api/v1/rules/reload", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 503


def test_sign_in_is_rate_limited_per_login_and_per_address(
    server: Server, person: Person, db: psycopg.Connection[Any]
) -> None:
    person()
    with server.client() as c:
        for _ in range(5):
            token = _login_form(c)
            r = c.post(
                "/login", data={"login": "zhangwei", "password": "nope", "csrf_token": token}
            )
            assert r.status_code == 401
        # Even the right password waits now.
        token = _login_form(c)
        r = c.post("/login", data={"login": "zhangwei", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 429
        assert 0 < int(r.headers["retry-after"]) <= 300
        assert "登录失败次数过多" in r.text
        assert "offsite_session" not in c.cookies
        # Another login from the same address is throttled too (5 failures from it).
        token = _login_form(c)
        r = c.post("/login", data={"login": "lisi", "password": "x", "csrf_token": token})
        assert r.status_code == 429
        metrics = c.get("/metrics").text
        assert 'offsite_api_signins_total{outcome="failed"} 5.0' in metrics
        assert 'offsite_api_signins_total{outcome="throttled"} 2.0' in metrics
    # When the window has passed (moved back here rather than waited for) sign-in works.
    db.execute("UPDATE login_failures SET at = at - interval '6 minutes'")
    with server.client() as c:
        sign_in(c, "zhangwei")
        assert c.get("/api/v1/me").status_code == 200


def test_sign_out_ends_the_session(server: Server, person: Person) -> None:
    person()
    with server.client() as c:
        token = sign_in(c, "zhangwei")
        stolen = c.cookies.get("offsite_session")
        confirm = c.get("/logout")
        assert confirm.status_code == 200
        assert "退出登录" in confirm.text
        # A forged sign-out (no token) is refused.
        assert c.post("/logout").status_code == 403
        r = c.post("/logout", data={"csrf_token": token})
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
        assert "offsite_session" not in c.cookies
        assert "已退出登录" in c.get(r.headers["location"]).text
    with server.client() as thief:
        thief.cookies.set("offsite_session", str(stolen))
        r = thief.get("/api/v1/me")
        assert r.status_code == 401
        assert "sign in again" in r.json()["detail"]


def test_sessions_expire_when_idle_and_absolutely(
    server: Server, person: Person, db: psycopg.Connection[Any]
) -> None:
    person()
    with server.client() as c:
        sign_in(c, "zhangwei")
        assert c.get("/api/v1/me").status_code == 200
        # Unused for longer than session_idle (2 h by default; the clock is moved, not waited).
        db.execute("UPDATE sessions SET last_seen_at = now() - interval '121 minutes'")
        assert c.get("/api/v1/me").status_code == 401
    with server.client() as c:
        sign_in(c, "zhangwei")
        db.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second'"
            " WHERE ended_at IS NULL AND last_seen_at > now() - interval '1 minute'"
        )
        assert c.get("/api/v1/me").status_code == 401


def test_disabling_or_resetting_a_person_ends_their_sessions(
    server: Server, person: Person, db: psycopg.Connection[Any]
) -> None:
    person()
    with server.client() as c:
        sign_in(c, "zhangwei")
        people.reset_password(db, "zhangwei", "another long password")
        assert c.get("/api/v1/me").status_code == 401
        sign_in(c, "zhangwei", "another long password")
        people.disable(db, "zhangwei")
        assert c.get("/api/v1/me").status_code == 401
        token = _login_form(c)
        r = c.post(
            "/login",
            data={"login": "zhangwei", "password": "another long password", "csrf_token": token},
        )
        assert r.status_code == 401


def test_account_rules(db: psycopg.Connection[Any]) -> None:
    with pytest.raises(people.PersonError, match="department 'XYZ' is unknown"):
        people.create_person(db, "a1", "A", "XYZ", "officer", PASSWORD)
    with pytest.raises(people.PersonError, match="role 'boss'"):
        people.create_person(db, "a1", "A", "EEB", "boss", PASSWORD)
    with pytest.raises(people.PersonError, match="at least 10"):
        people.create_person(db, "a1", "A", "EEB", "officer", "short")
    with pytest.raises(people.PersonError, match="login 'Bad Login'"):
        people.create_person(db, "Bad Login", "A", "EEB", "officer", PASSWORD)
    people.create_person(db, "a1", "A", "EEB", "officer", PASSWORD)
    with pytest.raises(people.PersonError, match="taken"):
        people.create_person(db, "a1", "B", "EEB", "officer", PASSWORD)
    assert timedelta(hours=2) == AuthSettings().session_idle


def test_without_single_sign_on_configured_there_is_no_button(server: Server) -> None:
    with server.client() as c:
        assert "/login/oidc" not in c.get("/login").text
        r = c.get("/login/oidc")
        assert r.status_code == 404
        assert "未配置统一身份认证" in r.text


def test_a_person_changes_their_own_password(server: Server, person: Person) -> None:
    person()
    new = "a brand new passphrase"
    with server.client() as c:
        token = sign_in(c, "zhangwei")
        old_cookie = c.cookies.get("offsite_session")
        assert "修改密码" in c.get("/account/password").text
        form = {"current": PASSWORD, "new": new, "confirm": new}
        assert c.post("/account/password", data=form).status_code == 403  # no CSRF token
        r = c.post("/account/password", data={**form, "current": "wrong", "csrf_token": token})
        assert r.status_code == 422
        assert "当前密码不正确" in r.text
        r = c.post("/account/password", data={**form, "confirm": "other", "csrf_token": token})
        assert r.status_code == 422
        assert "不一致" in r.text
        r = c.post("/account/password", data={**form, "csrf_token": token})
        assert r.status_code == 303
        assert c.get("/api/v1/me").json()["login"] == "zhangwei"  # a fresh session
        assert c.cookies.get("offsite_session") != old_cookie
    with server.client() as other:
        other.cookies.set("offsite_session", str(old_cookie))
        assert other.get("/api/v1/me").status_code == 401
        sign_in(other, "zhangwei", new)
