"""The FastAPI application: routers of every package over one ApiContext."""

from __future__ import annotations

from fastapi import FastAPI

from api.context import ApiContext
from api.metrics import AuthMetrics
from api.oidc import OidcClient
from api.routers import (
    alerts,
    dashboard,
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
    for module in (health, me, people, ingest, subjects, rules, alerts, video, dashboard, signin):
        app.include_router(module.router)
    return app
