"""Devices with status and last seen, and the map of subjects with open alerts."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from alerts import queries as alert_queries
from api.auth import Caller, Viewer
from api.context import Ctx
from ingest import queries as readings
from subjects import credit_code
from subjects import queries as subject_queries
from subjects.models import DeviceRole
from subjects.repository import SubjectError, SubjectNotFoundError, SubjectQuery
from subjects.schema import BindingOut
from web.pages import subject_forms as forms
from web.pages.common import pages, subjects_service
from web.pages.subject_forms import Errors, FieldError
from web.pages.subject_refusals import library_refusal

router = APIRouter(include_in_schema=False)


DEVICES_PER_PAGE = 200


@router.get("/devices", response_class=HTMLResponse)
def devices_page(
    request: Request, ctx: Ctx, caller: Viewer, page: Annotated[int, Query(ge=1, le=10_000)] = 1
) -> HTMLResponse:
    svc = subjects_service(ctx)
    total, bindings = svc.repository.department_bindings(
        caller, DEVICES_PER_PAGE, (page - 1) * DEVICES_PER_PAGE
    )
    with ctx.pool.connection() as conn:
        states = {d.device_id: d for d in readings.devices(conn, [b.device_id for b in bindings])}
    return pages(ctx).render(
        request, "devices.html", caller, active="devices", bindings=bindings, states=states,
        page=page, pages=max(1, -(-total // DEVICES_PER_PAGE)), total=total,
    )  # fmt: skip


def _platform_only(caller: Caller) -> None:
    # Unbound devices belong to no department yet: to everyone else the inbox does not exist.
    if not caller.is_platform_admin:
        raise HTTPException(404, "Not Found")


def _inbox(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    status_code: int = 200,
    done: BindingOut | None = None,
    form: dict[str, str] | None = None,
    errors: Errors | None = None,
) -> HTMLResponse:
    svc = subjects_service(ctx)
    with ctx.pool.connection() as conn:
        devices = readings.unbound_devices(conn)
    subjects = svc.repository.search(SubjectQuery(limit=500), caller).items
    return pages(ctx).render(
        request,
        "unbound.html",
        caller,
        status_code,
        active="devices",
        devices=devices,
        subjects=subjects,
        roles=[r.value for r in DeviceRole],
        form=form or {},
        errors=errors or {},
        done=done,
    )


@router.get("/devices/unbound", response_class=HTMLResponse)
def unbound_page(
    request: Request, ctx: Ctx, caller: Viewer, bound: str | None = None
) -> HTMLResponse:
    """The platform admin's inbox: devices that send data but are bound to no subject.

    `bound` names a device just bound here; the page confirms its binding as stored.
    """
    _platform_only(caller)
    done = None
    if bound:
        try:
            done = subjects_service(ctx).repository.binding(bound, caller)
        except SubjectNotFoundError:
            done = None
    return _inbox(request, ctx, caller, done=done)


@router.post("/devices/unbound/{device_id}/bind", response_model=None)
def bind_device(
    device_id: str,
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    credit_code_: Annotated[str, Form(alias="credit_code")] = "",
    role: Annotated[str, Form()] = "",
    point: Annotated[str, Form()] = "",
) -> Response:
    """Binds an inbox device through the subject library, then shows the subject's file."""
    _platform_only(caller)
    form = {"device": device_id, "credit_code": credit_code_, "role": role, "point": point}
    errors: Errors = {}
    try:
        code = credit_code.validate(credit_code_)
    except ValueError as err:
        code = credit_code.normalize(credit_code_)
        errors["credit_code"] = FieldError(
            "import_reason", "invalid_credit_code", {"value": code, "detail": str(err)}
        )
    _, data, invalid = forms.binding_in(
        {"device_id": device_id, "role": role, "point": point}, code
    )
    errors.update(invalid)
    if errors or data is None:
        return _inbox(request, ctx, caller, 422, form=form, errors=errors)
    repo = subjects_service(ctx).repository
    try:
        # The inbox binds new devices only; moving a bound one is done from its subject's file.
        bound = repo.binding(device_id, caller)
    except SubjectNotFoundError:
        pass
    else:
        detail = f"{device_id} → {bound.subject_name} ({bound.credit_code})"
        return _inbox(
            request, ctx, caller, 409, form={**form, "error": "already_bound", "detail": detail}
        )
    with ctx.pool.connection() as conn:
        if not readings.devices(conn, [device_id]):
            raise HTTPException(404, f"device {device_id!r} has never sent anything")
    try:
        repo.bind(device_id, data, caller)
    except SubjectError as err:
        status_code, errors = library_refusal(request, ctx, err, "credit_code")
        return _inbox(request, ctx, caller, status_code, form=form, errors=errors)
    # Back to the inbox, which names the new binding: the subject's file itself is read
    # through the library's department scope, which the platform admin is not in.
    return RedirectResponse(f"/devices/unbound?bound={quote(device_id)}", status_code=303)


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
