"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request

from api.auth import authenticate
from api.context import ApiContext
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
    for module in (health, ingest, subjects, rules, alerts, video, dashboard):
        app.include_router(module.router)

    def check_key(request: Request) -> None:
        authenticate(request, ctx)

    app.add_middleware(
        BodyLimits, limit_for=_limit_for(ctx, settings.max_body_bytes), authenticate=check_key
    )
    return app
