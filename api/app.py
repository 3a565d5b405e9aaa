"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from fastapi import FastAPI

from api.context import ApiContext
from api.routers import alerts, dashboard, health, ingest, rules, subjects, video


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="offsite",
        version="1",
        description="Off-site regulatory supervision: readings, clues, alerts and inspections.",
    )
    app.state.ctx = ctx
    for module in (health, ingest, subjects, rules, alerts, video, dashboard):
        app.include_router(module.router)
    return app
