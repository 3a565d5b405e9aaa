"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi

from api import errors
from api.auth import check_caller
from api.context import ApiContext
from api.input_guard import InputGuard
from api.limits import BodyLimits
from api.metrics import AuthMetrics
from api.oidc import OidcClient
from api.routers import (
    alerts,
    health,
    ingest,
    me,
    people,
    rules,
    signin,
    subjects,
    video,
)
from api.settings import AuthSettings, HttpSettings
from subjects.service import SubjectsService

IMPORT_PATH = "/api/v1/subjects/import"


class BodyLimitTable:
    """Per-route body caps beyond the default (imports, photo uploads), by path pattern.

    Kept on `app.state.body_limits` so that parts mounted later (the workbench) add theirs.
    """

    def __init__(self, default: int) -> None:
        self.default = default
        self._routes: list[tuple[re.Pattern[str], Callable[[], int]]] = []

    def add(self, pattern: str, limit: Callable[[], int]) -> None:
        self._routes.append((re.compile(pattern), limit))

    def __call__(self, path: str) -> int:
        for pattern, limit in self._routes:
            if pattern.fullmatch(path):
                return limit()
        return self.default


def import_limit(ctx: ApiContext, default: int) -> Callable[[], int]:
    """The subject importer's own cap (it takes whole files), else the default."""

    def limit() -> int:
        try:
            return ctx.get(SubjectsService).importer.max_bytes
        except LookupError:
            return default

    return limit


def create_app(ctx: ApiContext, http: HttpSettings | None = None) -> FastAPI:
    settings = http or HttpSettings()
    app = FastAPI(
        title="offsite",
        version="1",
        description="Off-site regulatory supervision: readings, clues, alerts and inspections.",
        # The workbench serves /docs from vendored Swagger UI (no CDN); ReDoc is not shipped.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    try:
        ctx.get(AuthSettings)
    except LookupError:
        ctx.provide(AuthSettings, AuthSettings())
    oidc = ctx.get(AuthSettings).oidc
    if oidc is not None:
        ctx.provide(OidcClient, OidcClient(oidc))
    try:
        ctx.get(AuthMetrics)
    except LookupError:
        ctx.provide(AuthMetrics, AuthMetrics(ctx.registry))
    errors.install(app)
    for module in (health, signin):
        app.include_router(module.router)
    for module in (me, people, ingest, subjects, rules, alerts, video):
        app.include_router(module.router, responses=errors.API_ERRORS)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    def check(request: Request) -> None:
        check_caller(request, ctx)

    # Added last runs first: size and caller before anything reads the body, then the values.
    app.add_middleware(InputGuard)
    limits = BodyLimitTable(settings.max_body_bytes)
    limits.add(re.escape(IMPORT_PATH), import_limit(ctx, settings.max_body_bytes))
    app.state.body_limits = limits
    app.add_middleware(BodyLimits, limit_for=limits, authenticate=check)
    return app


def create_health_app(ctx: ApiContext) -> FastAPI:
    """Only /healthz, /readyz and /metrics: the HTTP side of a process without the api role
    (an ingest, engine or video process still answers its supervisor and Prometheus)."""
    app = FastAPI(title="offsite", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.include_router(health.router)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The schema with its security schemes declared (the key check reads headers itself)."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "API key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "offsite_session",
                "description": "a person signed in at /login; unsafe methods also need the"
                " session's token in X-CSRF-Token",
            },
        }
        schema["security"] = [{"bearer": []}, {"apiKey": []}, {"session": []}]
        app.openapi_schema = schema
    return app.openapi_schema
