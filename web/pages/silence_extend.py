"""Extending a running silence from the silences page or an alert's page: a new end by preset
or a chosen local time, a preview of what it keeps muting, then the confirmed extension."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from alerts import queries
from alerts.silences import fetch as fetch_silences
from api.auth import Officer
from api.context import Ctx
from web.pages.common import Refused, alert_service, attempt, pages

router = APIRouter(include_in_schema=False)

# Presets add to the silence's current end: "4 more hours" is what an officer asks for.
EXTEND_HOURS = (1, 4, 24, 72, 168)


def new_end(ctx: Ctx, current_end: datetime, hours: int | None, until: str) -> datetime:
    """The end the form asks for: a chosen local time (in the workbench's zone) wins over a
    preset number of hours after the current end."""
    if until.strip():
        try:
            local = datetime.fromisoformat(until.strip())
        except ValueError as err:
            raise Refused("bad_time", f"until: {until!r} is not a date and time") from err
        if local.tzinfo is None:
            local = local.replace(tzinfo=pages(ctx).clock.zone)
        return local
    if hours not in EXTEND_HOURS:
        raise Refused("bad_time", f"hours: choose one of {', '.join(map(str, EXTEND_HOURS))}")
    return current_end + timedelta(hours=hours)


def _flash(ctx: Ctx, request: Request, caller: Officer, err: Refused) -> HTMLResponse:
    return pages(ctx).render(request, "flash.html", caller, error=err)


@router.post("/silences/{silence_id}/extend/preview", response_class=HTMLResponse)
def extend_preview(
    silence_id: int,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    hours: Annotated[int | None, Form()] = None,
    until: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    """The silence, its current and new end and what it mutes now, before the extension."""
    service = alert_service(ctx)
    with ctx.pool.connection() as conn:
        found = fetch_silences(conn, caller.department, silence_id)
    if not found:
        raise HTTPException(404, f"silence {silence_id} not found")
    try:
        ends = new_end(ctx, found[0].ends_at, hours, until)
        row = attempt(lambda: service.preview_silence_extension(caller, silence_id, ends))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    with ctx.pool.connection() as conn:
        affected = queries.open_alerts_matching(conn, caller.department, row.matcher, row.value)
        muted = queries.silenced_counts(conn, [row.id]).get(row.id, 0)
    return pages(ctx).render(
        request, "extend_preview.html", caller, s=row, ends=ends, affected=affected, muted=muted
    )


@router.post("/silences/{silence_id}/extend")
def extend(
    silence_id: int,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    ends_at: Annotated[datetime, Form()],
) -> Response:
    service = alert_service(ctx)
    try:
        if ends_at.tzinfo is None:
            raise Refused("bad_time", "ends_at: the time needs its UTC offset")
        attempt(lambda: service.extend_silence(caller, silence_id, ends_at))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    return Response(status_code=204, headers={"HX-Refresh": "true"})
