"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.context import ApiContext
from api.routers import alerts, health, ingest, rules, subjects, video


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
    for module in (health, ingest, subjects, rules, alerts, video):
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
        }
        schema["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = schema
    return app.openapi_schema
