"""ASGI middleware: values no route can store (NUL, lone surrogates, huge ints...) answer 422."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 64
# Years within which date arithmetic and time-zone shifts stay inside Python's and psycopg's
# datetime range (1..9999); a reading or a period outside them is a typing error anyway.
MIN_YEAR, MAX_YEAR = 2, 9998
_DATE = re.compile(r"^\s*([+-]?\d{4,})-\d{1,2}-\d{1,2}(?:[T ].*)?$", re.IGNORECASE)


class InputError(ValueError):
    """A value no route accepts; `where` names it (query.limit, body.rule.since, path)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where


def check_text(where: str, value: str) -> None:
    """Refuse text PostgreSQL cannot store, or a date outside the years we can shift."""
    if "\x00" in value:
        raise InputError(where, "contains a NUL character (\\u0000), which text cannot hold")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(where, "contains a lone UTF-16 surrogate (not valid Unicode)") from None
    date = _DATE.match(value) if len(value) < 64 else None
    if date is not None and not MIN_YEAR <= int(date.group(1)) <= MAX_YEAR:
        raise InputError(where, f"dates must lie in the years {MIN_YEAR} to {MAX_YEAR}")


def check_int(where: str, value: int) -> None:
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise InputError(where, f"{value} is outside the 64-bit integer range")


def _reject_constant(name: str) -> Any:
    raise InputError("body", f"{name} is not a number JSON allows; send a finite number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InputError("body", f"{text} is too large for a double-precision number")
    return value


def _walk(doc: Any) -> Iterator[tuple[str, Any, int]]:
    """(location, value, depth) of every node, iteratively (no recursion to exhaust)."""
    stack: list[tuple[str, Any, int]] = [("body", doc, 0)]
    while stack:
        where, value, depth = stack.pop()
        yield where, value, depth
        if isinstance(value, dict):
            for k, v in value.items():
                yield f"{where}.{k}", k, depth + 1  # keys are text too
                stack.append((f"{where}.{k}", v, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{where}.{i}", v, depth + 1) for i, v in enumerate(value))


def check_json(body: bytes) -> None:
    """Raise InputError for a JSON document no route can take; invalid JSON passes through
    (the route's parser names the syntax error)."""
    try:
        doc = json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except InputError:
        raise
    except RecursionError:
        raise InputError("body", f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        return
    for where, value, depth in _walk(doc):
        if depth > MAX_JSON_DEPTH:
            raise InputError(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, str):
            check_text(where, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            check_int(where, value)


def check_url(path: str, query: bytes) -> None:
    """The path as the server decoded it, and the query as Starlette will decode it."""
    if "\x00" in path:
        raise InputError("path", "contains a NUL character (%00)")
    for name, value in parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True):
        check_text(f"query.{name}", name)
        check_text(f"query.{name}", value)


class InputGuard:
    """Checks the path, the query and JSON bodies before the routes see them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_url(scope["path"], scope.get("query_string", b""))
        except InputError as err:
            await _refuse(scope, receive, send, err)
            return
        headers = dict(scope["headers"])
        if b"json" not in headers.get(b"content-type", b"").lower():
            await self.app(scope, receive, send)
            return
        # The body is already capped (BodyLimits runs first), so holding it is bounded.
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            if body:
                check_json(body)
        except InputError as err:
            await _refuse(scope, receive, send, err)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive


async def _refuse(scope: Scope, receive: Receive, send: Send, err: InputError) -> None:
    await JSONResponse({"detail": str(err)}, 422)(scope, receive, send)
