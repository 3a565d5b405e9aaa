"""Installs the workbench on the API app: pages, static assets, /docs, sign-in redirect."""

from __future__ import annotations

import logging
from importlib import resources
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from alerts.findings import MAX_PHOTO_BYTES, MAX_PHOTOS
from api.app import BodyLimitTable, import_limit
from api.context import ApiContext
from api.errors import validation_error
from web.departments import DepartmentNames
from web.pages import (
    admin,
    alert,
    board,
    devices,
    draws,
    records,
    silence_extend,
    subject_edit,
    subjects,
    tasks,
)
from web.settings import WebSettings
from web.templating import Pages

log = logging.getLogger(__name__)

# Paths that answer machines; everything else is a page for people.
_MACHINE_PREFIXES = ("/api/", "/metrics", "/healthz", "/readyz", "/static/", "/openapi.json")

SWAGGER = "/static/vendor/swagger-ui-5.18.2"


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(_MACHINE_PREFIXES)


async def _unauthenticated(request: Request, exc: Exception) -> Response:
    """A page asked without a valid sign-in goes to /login and comes back afterwards."""
    assert isinstance(exc, HTTPException)
    if not is_page(request):
        return await http_exception_handler(request, exc)
    if exc.status_code != 401:
        return _error_page(request, exc)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    current = urlsplit(request.headers.get("hx-current-url", ""))
    if request.headers.get("hx-request") and current.netloc == request.url.netloc:
        # Come back to the page the swap was made from, not to the bare fragment.
        target = current.path + (f"?{current.query}" if current.query else "")
    login = f"/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # An HTMX swap cannot follow a redirect into a whole page: ask it to navigate.
        return Response(status_code=401, headers={"HX-Redirect": login})
    return RedirectResponse(login, status_code=303)


# A page's refusal as the officer reads it: a sentence from the catalogs, not the API's JSON.
_PAGE_ERRORS = {403: "forbidden", 404: "not_found", 409: "refused", 413: "too_large",
                422: "invalid", 503: "unavailable"}  # fmt: skip


def _error_page(request: Request, exc: HTTPException) -> Response:
    pages: Pages = request.app.state.pages
    code = _PAGE_ERRORS.get(exc.status_code, "refused")
    response = pages.render(request, "error.html", None, exc.status_code, code=code,
                            detail=str(exc.detail))  # fmt: skip
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _invalid(request: Request, exc: Exception) -> Response:
    """A page's form that fails FastAPI's own checks (a field too long, an id that is no
    number) is the error page in the page's language; machines keep the API's JSON."""
    if not is_page(request):
        return await validation_error(request, exc)
    return _error_page(request, HTTPException(422, "the form has an invalid field"))


def _docs() -> HTMLResponse:
    # Swagger UI from the vendored copy: /docs renders with no internet.
    html = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>offsite API</title><link rel="stylesheet" href="{SWAGGER}/swagger-ui.css"></head>
<body><div id="ui"></div><script src="{SWAGGER}/swagger-ui-bundle.js"></script>
<script src="/static/js/docs.js"></script></body></html>"""
    return HTMLResponse(html)


def install(app: FastAPI, ctx: ApiContext, settings: WebSettings) -> Pages:
    """Add the workbench to `app`; returns the renderer (also provided on `ctx`)."""
    pages = Pages(settings, DepartmentNames(ctx.pool))
    ctx.provide(Pages, pages)
    app.state.pages = pages
    static = resources.files("web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.add_exception_handler(HTTPException, _unauthenticated)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_api_route("/docs", _docs, include_in_schema=False, response_class=HTMLResponse)
    for module in (
        board,
        alert,
        tasks,
        subjects,
        subject_edit,
        devices,
        admin,
        records,
        silence_extend,
        draws,
    ):
        app.include_router(module.router)
    # The pages' uploads are larger than the API's default body cap.
    limits: BodyLimitTable = app.state.body_limits
    limits.add(r"/subjects/import", import_limit(ctx, limits.default))
    limits.add(r"/tasks/\d+/findings", lambda: MAX_PHOTOS * MAX_PHOTO_BYTES + 1024 * 1024)
    return pages
