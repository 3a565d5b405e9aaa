"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.context import ApiContext
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
from api.settings import AuthSettings


def create_app(ctx: ApiContext) -> FastAPI:
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
    for module in (health, me, people, ingest, subjects, rules, alerts, video, signin):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
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
