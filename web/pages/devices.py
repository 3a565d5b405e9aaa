"""Devices with status and last seen, and the map of subjects with open alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from alerts import queries as alert_queries
from api.auth import Viewer
from ingest import queries as readings
from subjects import queries as subject_queries
from subjects.repository import SubjectQuery
from web.pages.common import Ctx, pages, subject_actor, subjects_service

router = APIRouter(include_in_schema=False)


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    svc = subjects_service(ctx)
    actor = subject_actor(caller)
    subjects = svc.repository.search(SubjectQuery(limit=500), actor).items
    bindings = [b for s in subjects for b in svc.repository.bindings_of(s.credit_code, actor)]
    with ctx.pool.connection() as conn:
        states = {d.device_id: d for d in readings.devices(conn, [b.device_id for b in bindings])}
    return pages(ctx).render(
        request, "devices.html", caller, active="devices", bindings=bindings, states=states
    )


_SEVERITY_ORDER = ("critical", "major", "warning", "info")


@router.get("/map", response_class=HTMLResponse)
def map_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    """Subjects with open alerts, coloured by their worst severity; a list where no
    coordinates are recorded, and a useful page without any tile server."""
    with ctx.pool.connection() as conn:
        counts = alert_queries.open_alert_counts(conn, caller.department)
        places = subject_queries.locations(conn, list(counts))
    points = []
    for p in places:
        by_sev = counts.get(p.credit_code, {})
        worst = next((s for s in _SEVERITY_ORDER if by_sev.get(s)), "info")
        points.append({
            "code": p.credit_code, "name": p.name, "grid": p.grid, "lat": p.latitude,
            "lon": p.longitude, "worst": worst, "open": sum(by_sev.values()),
        })  # fmt: skip
    return pages(ctx).render(request, "map.html", caller, active="map", points=points)
