"""ASGI middleware: request bodies are capped (413) and need a valid key before any is read."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import HTTPException
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

# Where a body may arrive without an API key (sign-in forms carry the credentials in it).
PUBLIC_BODY_PREFIXES: tuple[str, ...] = ("/login", "/api/v1/auth/")
API_PREFIX = "/api/v1/"


class BodyTooLargeError(HTTPException):
    """A streamed body passed the cap; raised from `receive`, answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body may hold at most {limit} bytes")


class BodyLimits:
    """Refuses over-long bodies by Content-Length and by counting streamed bytes, and checks
    authentication of /api/v1 requests with a body before the application reads a byte.

    `limit_for(path)` gives the cap of a route (the subject import takes more than the rest);
    `authenticate(request)` raises HTTPException (401/403) for a caller who may not call.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[str], int],
        authenticate: Callable[[Request], object] | None = None,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        limit = self.limit_for(path)
        headers = {k.lower(): v for k, v in scope["headers"]}
        declared = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        if declared is not None:
            if not declared.strip().isdigit():
                await _answer(scope, receive, send, 400, "Content-Length must be a whole number")
                return
            if int(declared) > limit:
                await _answer(
                    scope, receive, send, 413, f"the request body may hold at most {limit} bytes"
                )
                return
        has_body = chunked or (declared is not None and int(declared) > 0)
        if has_body and self.authenticate is not None and _needs_key(path):
            refusal = await self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _counting(receive, limit), watched)
        except BodyTooLargeError as err:
            # Routes answer it themselves; this covers an app that let it through.
            if started:
                raise
            await _answer(scope, receive, send, 413, str(err.detail))

    async def _refusal(self, scope: Scope) -> JSONResponse | None:
        assert self.authenticate is not None
        request = Request(scope)
        try:
            await run_in_threadpool(self.authenticate, request)
        except StarletteHTTPException as err:
            return JSONResponse({"detail": err.detail}, err.status_code, headers=err.headers)
        return None


def _needs_key(path: str) -> bool:
    return path.startswith(API_PREFIX) and not path.startswith(PUBLIC_BODY_PREFIXES)


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLargeError(limit)
        return message

    return wrapped


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status)(scope, receive, send)
