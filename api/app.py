"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

from api import errors
from api.auth import authenticate
from api.context import ApiContext
from api.input_guard import InputGuard
from api.limits import BodyLimits
from api.routers import alerts, dashboard, health, ingest, rules, subjects, video
from api.settings import HttpSettings
from subjects.service import SubjectsService

IMPORT_PATH = "/api/v1/subjects/import"


def _limit_for(ctx: ApiContext, default: int) -> Callable[[str], int]:
    def limit(path: str) -> int:
        if path == IMPORT_PATH:
            try:
                return ctx.get(SubjectsService).importer.max_bytes
            except LookupError:
                return default
        return default

    return limit


def create_app(ctx: ApiContext, http: HttpSettings | None = None) -> FastAPI:
    settings = http or HttpSettings()
    app = FastAPI(
        title="offsite",
        version="1",
        description="Off-site regulatory supervision: readings, clues, alerts and inspections.",
    )
    app.state.ctx = ctx
    errors.install(app)
    for module in (health, dashboard):
        app.include_router(module.router)
    for module in (ingest, subjects, rules, alerts, video):
        app.include_router(module.router, responses=errors.API_ERRORS)

    def check_key(request: Request) -> None:
        authenticate(request, ctx)

    # Added last runs first: size and key before anything reads the body, then the values.
    app.add_middleware(InputGuard)
    app.add_middleware(
        BodyLimits, limit_for=_limit_for(ctx, settings.max_body_bytes), authenticate=check_key
    )
    return app
