"""Devices with status and last seen, and the map of subjects with open alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.auth import Viewer
from ingest import queries as readings
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
