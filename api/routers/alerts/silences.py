"""Silences: mute notifications for a time, with a reason; extend or expire them."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from alerts.silences import fetch as fetch_silences
from alerts.silences import fetch_in_force
from api.auth import Officer, Viewer
from api.context import Ctx
from api.params import Id, aware
from api.routers.alerts.common import call, service_of
from api.routers.alerts.models import (
    SilenceExtendIn,
    SilenceIn,
    SilenceOut,
    SilencePatch,
    silence_out,
)

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/silences", response_model=list[SilenceOut])
def list_silences(ctx: Ctx, caller: Viewer, active: bool = False) -> list[SilenceOut]:
    """The caller's department's silences; `active=true` keeps those in force now."""
    with ctx.pool.connection() as conn:
        rows = (
            fetch_in_force(conn, caller.department)
            if active
            else fetch_silences(conn, caller.department)
        )
    return [silence_out(r) for r in rows]


@router.post("/silences", response_model=SilenceOut, status_code=201)
def create_silence(body: SilenceIn, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Mute notifications (never the recording of alerts) for a time, with a reason."""
    service = service_of(ctx)
    row = call(
        lambda: service.create_silence(
            caller, body.matcher, body.value, body.starts_at, body.ends_at, body.reason
        )
    )
    return silence_out(row)


@router.get("/silences/{silence_id}", response_model=SilenceOut)
def get_silence(silence_id: Id, ctx: Ctx, caller: Viewer) -> SilenceOut:
    with ctx.pool.connection() as conn:
        rows = fetch_silences(conn, caller.department, silence_id)
    if not rows:
        raise HTTPException(404, f"silence {silence_id} not found")
    return silence_out(rows[0])


@router.patch("/silences/{silence_id}", response_model=SilenceOut)
def change_silence(silence_id: Id, body: SilencePatch, ctx: Ctx, caller: Officer) -> SilenceOut:
    service = service_of(ctx)
    aware(body.ends_at, "ends_at")
    row = call(lambda: service.change_silence(caller, silence_id, body.ends_at, body.reason))
    return silence_out(row)


@router.post("/silences/{silence_id}/extend", response_model=SilenceOut)
def extend_silence(silence_id: Id, body: SilenceExtendIn, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Move a running silence's end later (at most 90 days after its start), audited."""
    service = service_of(ctx)
    aware(body.ends_at, "ends_at")
    row = call(lambda: service.extend_silence(caller, silence_id, body.ends_at))
    return silence_out(row)


@router.delete("/silences/{silence_id}", response_model=SilenceOut)
def expire_silence(silence_id: Id, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Expire now; the silence stays on record (and in the audit log)."""
    service = service_of(ctx)
    row = call(lambda: service.change_silence(caller, silence_id, expire=True))
    return silence_out(row)
