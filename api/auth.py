"""Who is calling: a person by session cookie or a machine by API key; role checks and CSRF."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from starlette.concurrency import run_in_threadpool

from api import keys, sessions
from api.context import ApiContext, Ctx
from api.keys import KEY_PREFIX, KeyRequestError, create_key, hash_key
from api.settings import AuthSettings
from core.principal import Principal, PrincipalKind, Role

__all__ = [
    "KEY_PREFIX",
    "Admin",
    "Caller",
    "KeyRequestError",
    "Officer",
    "PlatformAdmin",
    "Principal",
    "PrincipalKind",
    "Role",
    "Viewer",
    "authenticate",
    "create_key",
    "csrf_token_for",
    "hash_key",
    "still_valid",
]

SESSION_COOKIE = "offsite_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# The name the routers have always used.
Caller = Principal


def auth_settings(ctx: ApiContext) -> AuthSettings:
    try:
        return ctx.get(AuthSettings)
    except LookupError:
        return AuthSettings()


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("x-api-key")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _by_key(ctx: ApiContext, key: str) -> Principal:
    with ctx.pool.connection() as conn:
        record = keys.find_active(conn, key)
    if record is None:
        raise _unauthorized("the API key is unknown or revoked")
    return Principal.key(record.id, record.name, record.department, record.role)


def _by_session(ctx: ApiContext, token: str) -> Principal | None:
    with ctx.pool.connection() as conn:
        session = sessions.resume(conn, token, auth_settings(ctx).session_idle)
    if session is None:
        return None
    p = session.person
    return Principal.person(
        p.id, p.name, p.login, p.department, p.role, session.id, session.csrf_token
    )


async def _presented_csrf(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        # Starlette keeps the parsed form on the request, so the route reads it again for free.
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def check_caller(request: Request, ctx: ApiContext) -> None:
    """Raise 401 unless the request carries a valid key or a live session.

    For middleware that must refuse a stranger before reading a body; the CSRF token (which
    may sit in that body) is checked later by `authenticate`.
    """
    key = _presented_key(request)
    if key:
        _by_key(ctx, key)
        return
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise _unauthorized(
            "sign in at /login, or send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'"
        )
    if _by_session(ctx, token) is None:
        raise _unauthorized("the session has ended or expired: sign in again at /login")


async def authenticate(request: Request, ctx: Ctx) -> Principal:
    """The caller by API key (header) or by session cookie; unsafe cookie requests need CSRF."""
    key = _presented_key(request)
    if key:
        principal = await run_in_threadpool(_by_key, ctx, key)
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            raise _unauthorized(
                "sign in at /login, or send an API key as 'Authorization: Bearer <key>'"
                " or 'X-API-Key'"
            )
        found = await run_in_threadpool(_by_session, ctx, token)
        if found is None:
            raise _unauthorized("the session has ended or expired: sign in again at /login")
        principal = found
        if request.method not in _SAFE_METHODS:
            presented = await _presented_csrf(request)
            assert principal.csrf_token is not None
            if not secrets.compare_digest(presented.encode(), principal.csrf_token.encode()):
                raise HTTPException(
                    status.HTTP_403_FORBIDDEN,
                    f"the CSRF token is missing or wrong: send the page's token in the"
                    f" {CSRF_HEADER} header or the {CSRF_FIELD} field (reload the page)",
                )
        request.state.csrf_token = principal.csrf_token
    request.state.principal = principal
    return principal


def csrf_token_for(request: Request) -> str:
    """The token pages embed in forms and HTMX headers; '' for a caller with no session."""
    return str(getattr(request.state, "csrf_token", "") or "")


def still_valid(ctx: ApiContext, principal: Principal) -> bool:
    """Is the caller still allowed in? Open live streams ask this every few seconds."""
    with ctx.pool.connection() as conn:
        if principal.kind is PrincipalKind.KEY:
            return keys.is_active(conn, principal.id)
        assert principal.session_id is not None
        return sessions.is_live(conn, principal.session_id)


def require(role: Role) -> Any:
    """A dependency that admits callers with at least `role`."""

    def check(caller: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if caller.role.rank < role.rank:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {role.value} role; {caller.name} has {caller.role.value}",
            )
        return caller

    return Depends(check)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Officer = Annotated[Principal, require(Role.OFFICER)]
Admin = Annotated[Principal, require(Role.ADMIN)]
PlatformAdmin = Annotated[Principal, require(Role.PLATFORM_ADMIN)]
