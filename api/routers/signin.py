"""/login and /logout: personal sign-in with a password, sessions in an HttpOnly cookie."""

from __future__ import annotations

import logging
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool

from api import people, sessions, throttle
from api.auth import SESSION_COOKIE, Principal, PrincipalKind, auth_settings, authenticate
from api.context import ApiContext, Ctx, get_context
from api.metrics import AuthMetrics
from api.oidc import ATTEMPT_TTL_S, OidcClient, OidcError
from api.settings import AuthSettings

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# Before a session exists the sign-in form is protected by a double-submitted token.
LOGIN_CSRF_COOKIE = "offsite_login_csrf"

_env = Environment(
    loader=PackageLoader("api", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
)

BAD_CREDENTIALS = "登录名或密码不正确，或账号已停用。"
THROTTLED = "登录失败次数过多，请在 {minutes} 分钟后再试。"
STALE_FORM = "登录页面已过期，请重新提交。"


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path on this site only, never another host."""
    if not target or "\\" in target or any(ord(c) < 32 for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _cookie_secure(settings: AuthSettings) -> bool:
    return settings.https


def _page(
    request: Request,
    status_code: int = 200,
    *,
    error: str = "",
    login: str = "",
    next_: str = "/",
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    ctx = get_context(request)
    settings = auth_settings(ctx)
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    oidc = settings.oidc
    html = _env.get_template("signin.html").render(
        mode="login",
        title="登录",
        error=error,
        notice="已退出登录。" if request.query_params.get("signed_out") else "",
        login=login,
        next=next_,
        csrf_token=token,
        sso_label=oidc.button_label if oidc is not None else "",
    )
    response = HTMLResponse(html, status_code, headers=headers)
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(settings),
        path="/login",
    )
    return response


def start_session(
    request: Request, ctx: ApiContext, person: people.Person, target: str
) -> RedirectResponse:
    """Open a session for `person` and send the browser on with the cookie set."""
    settings = auth_settings(ctx)
    with ctx.pool.connection() as conn:
        throttle.forget(conn, person.login, settings.login_window)
        token, _ = sessions.open_session(
            conn,
            person,
            settings.session_absolute,
            ip=_client_ip(request),
            user_agent=request.headers.get("user-agent", ""),
        )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_absolute.total_seconds()),
        httponly=True,
        # Lax, not Strict: a link from a notification e-mail and the single-sign-on return
        # are top-level cross-site navigations that must arrive signed in. CSRF tokens guard
        # every unsafe request regardless.
        samesite="lax",
        secure=_cookie_secure(settings),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    log.info("%s (%s) signed in from %s", person.login, person.department, _client_ip(request))
    return response


def _metrics(ctx: ApiContext) -> AuthMetrics:
    return ctx.get(AuthMetrics)


async def _signed_in(request: Request, ctx: ApiContext) -> Principal | None:
    if SESSION_COOKIE not in request.cookies:
        return None
    try:
        # A GET: no CSRF check is made, and an ended session is simply "not signed in".
        return await authenticate(request, ctx)
    except HTTPException:
        return None


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    target = safe_next(next)
    if await _signed_in(request, ctx) is not None:
        return RedirectResponse(target, status_code=303)
    return _page(request, next_=target)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    ctx: Ctx,
    login: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    target = safe_next(next)
    login = login.strip().lower()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        return _page(request, 403, error=STALE_FORM, login=login, next_=target)
    settings = auth_settings(ctx)
    ip = _client_ip(request)
    metrics = _metrics(ctx)
    with ctx.pool.connection() as conn:
        wait = throttle.retry_after(
            conn, login, ip, settings.login_max_failures, settings.login_window
        )
        if wait is not None:
            metrics.signins.labels("throttled").inc()
            minutes = max(1, -(-wait // 60))
            return _page(
                request,
                429,
                error=THROTTLED.format(minutes=minutes),
                login=login,
                next_=target,
                headers={"Retry-After": str(wait)},
            )
        person = people.verify(conn, login, password)
        if person is None:
            throttle.record_failure(conn, login, ip)
    if person is None:
        metrics.signins.labels("failed").inc()
        log.info("failed sign-in for login %r from %s", login, ip)
        return _page(request, 401, error=BAD_CREDENTIALS, login=login, next_=target)
    metrics.signins.labels("ok").inc()
    return start_session(request, ctx, person, target)


@router.get("/logout", response_class=HTMLResponse)
async def logout_form(request: Request, ctx: Ctx) -> Response:
    """A link to /logout asks for confirmation: signing out changes state, so it is a POST."""
    principal = await _signed_in(request, ctx)
    if principal is None or principal.kind is not PrincipalKind.PERSON:
        return RedirectResponse("/login", status_code=303)
    html = _env.get_template("signin.html").render(
        mode="logout",
        title="退出登录",
        who=f"当前登录：{principal.name}",
        csrf_token=principal.csrf_token or "",
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.post("/logout")
async def logout(request: Request, ctx: Ctx) -> Response:
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    if SESSION_COOKIE in request.cookies:
        try:
            principal: Principal | None = await authenticate(request, ctx)
        except HTTPException as err:
            if err.status_code != 401:
                raise  # 403 without the session's CSRF token: a forged sign-out is refused
            principal = None  # already ended: just clear the cookie
        if principal is not None and principal.session_id is not None:
            session_id = principal.session_id

            def end() -> None:
                with ctx.pool.connection() as conn:
                    sessions.end(conn, session_id)

            await run_in_threadpool(end)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- single sign-on ------------------------------------------------------------------------

OIDC_STATE_COOKIE = "offsite_oidc_state"
SSO_OFF = "未配置统一身份认证。"


def _oidc(ctx: ApiContext) -> OidcClient | None:
    try:
        return ctx.get(OidcClient)
    except LookupError:
        return None


@router.get("/login/oidc")
def oidc_start(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    client = _oidc(ctx)
    if client is None:
        return _page(request, 404, error=SSO_OFF)
    redirect_uri = str(request.url_for("oidc_callback"))
    try:
        with ctx.pool.connection() as conn:
            url, state = client.start(conn, redirect_uri, safe_next(next))
    except OidcError as err:
        log.warning("single sign-on could not start: %s", err)
        return _page(request, 502, error=f"统一身份认证暂不可用：{err}")
    response = RedirectResponse(url, status_code=303)
    # Ties the provider's answer to this browser, so nobody can sign it in as someone else.
    response.set_cookie(
        OIDC_STATE_COOKIE,
        state,
        max_age=ATTEMPT_TTL_S,
        httponly=True,
        samesite="lax",  # the provider's redirect back is a cross-site top-level navigation
        secure=_cookie_secure(auth_settings(ctx)),
        path="/login/oidc",
    )
    return response


@router.get("/login/oidc/callback", name="oidc_callback")
def oidc_callback(
    request: Request,
    ctx: Ctx,
    code: str = "",
    state: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    client = _oidc(ctx)
    if client is None:
        return _page(request, 404, error=SSO_OFF)
    metrics = _metrics(ctx)
    if error:
        metrics.signins.labels("failed").inc()
        return _page(request, 401, error=f"统一身份认证未通过：{error_description or error}")
    expected = request.cookies.get(OIDC_STATE_COOKIE, "")
    if not state or not expected or not secrets.compare_digest(expected.encode(), state.encode()):
        metrics.signins.labels("failed").inc()
        return _page(request, 403, error="统一身份认证的返回与本浏览器发起的登录不符，请重新登录。")
    try:
        with ctx.pool.connection() as conn:
            person, target = client.finish(conn, str(request.url_for("oidc_callback")), code, state)
    except OidcError as err:
        metrics.signins.labels("failed").inc()
        log.warning("single sign-on refused: %s", err)
        return _page(request, 401, error=f"统一身份认证登录失败：{err}")
    metrics.signins.labels("ok").inc()
    response = start_session(request, ctx, person, safe_next(target))
    response.delete_cookie(OIDC_STATE_COOKIE, path="/login/oidc")
    return response


# -- the person's own password ---------------------------------------------------------------

PASSWORD_ERRORS = {
    "the current password is wrong": "当前密码不正确。",
    "the new password must differ from the current one": "新密码不能与当前密码相同。",
}


def _password_page(principal: Principal, status_code: int = 200, error: str = "") -> HTMLResponse:
    html = _env.get_template("signin.html").render(
        mode="password",
        title="修改密码",
        who=f"当前登录：{principal.name}",
        error=error,
        csrf_token=principal.csrf_token or "",
        min_length=people.MIN_PASSWORD,
    )
    return HTMLResponse(html, status_code, headers={"Cache-Control": "no-store"})


@router.get("/account/password", response_class=HTMLResponse)
async def password_form(request: Request, ctx: Ctx) -> Response:
    principal = await _signed_in(request, ctx)
    if principal is None or principal.kind is not PrincipalKind.PERSON:
        return RedirectResponse("/login?next=/account/password", status_code=303)
    return _password_page(principal)


@router.post("/account/password", response_class=HTMLResponse)
async def password_change(
    request: Request,
    ctx: Ctx,
    current: Annotated[str, Form(max_length=1024)] = "",
    new: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    principal = await authenticate(request, ctx)  # the session's CSRF token is checked here
    if principal.kind is not PrincipalKind.PERSON or principal.login is None:
        raise HTTPException(400, "an API key has no password to change")
    if new != confirm:
        return _password_page(principal, 422, "两次输入的新密码不一致。")
    login = principal.login

    def change() -> people.Person:
        with ctx.pool.connection() as conn:
            return people.change_password(conn, login, current, new)

    try:
        person = await run_in_threadpool(change)
    except people.PersonError as err:
        message = PASSWORD_ERRORS.get(str(err), f"新密码至少需要 {people.MIN_PASSWORD} 个字符。")
        return _password_page(principal, 422, message)
    # Every session ended with the change, this one too: the browser continues in a new one.
    return await run_in_threadpool(start_session, request, ctx, person, "/")
