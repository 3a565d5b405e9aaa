"""Error answers of the API: their documented shape, and handlers that cannot crash."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)


class FieldProblem(BaseModel):
    loc: list[str | int] = Field(description="where: body/query/path, then the field names")
    msg: str
    type: str


class ErrorOut(BaseModel):
    """Every error answer: `detail` is a sentence, a list of field problems (request
    validation), or an object with a `code` where a route says so."""

    detail: str | list[FieldProblem] | dict[str, Any]
    code: str | None = Field(
        default=None, description="a refusal's stable code (e.g. silence_end_not_later)"
    )


class CodedHTTPException(HTTPException):
    """An HTTP error whose answer carries the refusal's stable `code` beside `detail`."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code, detail)
        self.code = code


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "the request cannot be read",
        401: "no API key, or an unknown or revoked one",
        403: "the key's role may not do this",
        404: "not found, or another department's",
        409: "clashes with the current state",
        413: "the request body is too large",
        422: "a value is invalid; the answer names it",
        503: "the service behind the route is not running",
    }
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}


# What every /api/v1 route may answer besides its success.
API_ERRORS = _responses(400, 401, 403, 404, 409, 413, 422, 503)


def _safe(value: Any) -> str:
    # Messages may quote the input: keep them encodable whatever the client sent.
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without echoing the input (which may hold lone surrogates or NULs)."""
    assert isinstance(exc, RequestValidationError)
    problems = [
        {
            "loc": [p if isinstance(p, int) else _safe(p) for p in e.get("loc", ())],
            "msg": _safe(e.get("msg", "")),
            "type": _safe(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return JSONResponse({"detail": problems}, status_code=422)


async def data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value the database refuses (out of range, not representable) is the caller's error."""
    assert isinstance(exc, psycopg.errors.DataError)
    reason = exc.diag.message_primary or "a value is out of range"
    log.info("refused by the database on %s: %s", request.url.path, reason)
    return JSONResponse({"detail": f"a value is out of range: {_safe(reason)}"}, status_code=422)


async def overflow_error(request: Request, exc: Exception) -> JSONResponse:
    log.info("overflow on %s: %s", request.url.path, exc)
    return JSONResponse({"detail": f"a value is out of range: {_safe(exc)}"}, status_code=422)


async def coded_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CodedHTTPException)
    return JSONResponse({"detail": exc.detail, "code": exc.code}, status_code=exc.status_code)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CodedHTTPException, coded_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(psycopg.errors.DataError, data_error)
    app.add_exception_handler(OverflowError, overflow_error)
