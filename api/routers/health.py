"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.context import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving HTTP."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={503: {"description": "not ready: `checks` says which dependency is down"}},
)
def readyz(ctx: Ctx) -> JSONResponse:
    """Ready when the database and the broker are reachable (503 otherwise)."""
    checks = dict(ctx.readiness())
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(ctx: Ctx) -> Response:
    """Prometheus text exposition of every offsite metric."""
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
