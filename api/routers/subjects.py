"""/api/v1 routes of the subject library: subjects, supervising departments, device bindings.

Viewers read; officers and admins write. Everything is scoped to the caller's department:
a subject the department does not supervise now answers 404, as do its devices.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import Officer, Viewer
from api.context import Ctx
from api.errors import CodedHTTPException
from api.params import Id, Offset
from subjects import credit_code
from subjects.importer import ImportTooLargeError, content_format
from subjects.models import Grade, RiskLevel
from subjects.repository import (
    SubjectConflictError,
    SubjectError,
    SubjectForbiddenError,
    SubjectInvalidError,
    SubjectNotFoundError,
    SubjectQuery,
)
from subjects.schema import (
    DEVICE_ID,
    BindingIn,
    BindingOut,
    LinkDecisionIn,
    LinkIn,
    LinkOut,
    LinkRequestOut,
    LinkRequestState,
    SubjectIn,
    SubjectOut,
    SubjectPage,
    SubjectPatch,
)
from subjects.service import SubjectsService

router = APIRouter(prefix="/api/v1", tags=["subjects"])

_DEVICE = re.compile(DEVICE_ID)


def service(ctx: Ctx) -> SubjectsService:
    try:
        return ctx.get(SubjectsService)
    except LookupError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err


Service = Annotated[SubjectsService, Depends(service)]


@contextmanager
def refusals() -> Iterator[None]:
    """The library's refusals as HTTP errors with a clear `detail` and their stable `code`
    (subjects.errors.SubjectRefusal)."""
    try:
        yield
    except SubjectError as err:
        raise CodedHTTPException(_STATUS.get(type(err), 422), err.code.value, str(err)) from err


_STATUS: dict[type[SubjectError], int] = {
    SubjectNotFoundError: status.HTTP_404_NOT_FOUND,
    SubjectConflictError: status.HTTP_409_CONFLICT,
    SubjectForbiddenError: status.HTTP_403_FORBIDDEN,
    SubjectInvalidError: status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def _code(text: str) -> str:
    return credit_code.normalize(text)


@router.get("/subjects", response_model=SubjectPage)
def list_subjects(
    svc: Service,
    caller: Viewer,
    q: Annotated[str | None, Query(description="credit code prefix or part of the name")] = None,
    credit_code: str | None = None,
    name: Annotated[str | None, Query(description="part of the name")] = None,
    grid: Annotated[list[str] | None, Query()] = None,
    industry: Annotated[list[str] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query(description="subjects carrying all these")] = None,
    grade: Annotated[
        list[Grade] | None, Query(description="A-D or green/blue/yellow/red/black")
    ] = None,
    risk_level: Annotated[list[RiskLevel] | None, Query()] = None,
    department: Annotated[
        list[str] | None, Query(description="also supervised now by all these departments")
    ] = None,
    cross_department: bool | None = None,
    order: Annotated[str, Query(pattern="^(credit_code|name|updated_at)$")] = "credit_code",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> SubjectPage:
    """Subjects the caller's department supervises now, filtered and paged."""
    query = SubjectQuery(
        q=q,
        credit_code=credit_code,
        name=name,
        grid=tuple(grid or ()),
        industry=tuple(industry or ()),
        tags=tuple(tag or ()),
        grades=tuple(grade or ()),
        risk_levels=tuple(risk_level or ()),
        departments=tuple(d.upper() for d in department or ()),
        cross_department=cross_department,
        order=order,
        limit=limit,
        offset=offset,
    )
    with refusals():
        return svc.repository.search(query, caller)


@router.get("/subjects/cross-department", response_model=SubjectPage)
def cross_department_subjects(
    svc: Service,
    caller: Viewer,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> SubjectPage:
    """The cross-department library: subjects two or more departments supervise now,
    among those the caller's department supervises."""
    query = SubjectQuery(cross_department=True, limit=limit, offset=offset)
    with refusals():
        return svc.repository.search(query, caller)


@router.post(
    "/subjects/import",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
    responses={422: {"description": "rows with errors; nothing was imported"}},
)
async def import_subjects(
    request: Request,
    svc: Service,
    caller: Officer,
    dry_run: Annotated[bool, Query(description="validate and report, write nothing")] = False,
    format_: Annotated[
        str | None, Query(alias="format", pattern="^(csv|json)$", description="else Content-Type")
    ] = None,
) -> JSONResponse:
    """Bulk import (CSV or JSON, see docs/subjects.md): all rows or none, with a per-row report."""
    fmt = content_format(request.headers.get("content-type"), format_)
    if fmt is None:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send text/csv or application/json, or name it with ?format=csv|json",
        )
    limit = svc.importer.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE, f"the import may hold at most {limit} bytes"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"the import may hold at most {limit} bytes"
            )
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        report = await run_in_threadpool(svc.importer.run, body, fmt, caller, dry_run)
    except ImportTooLargeError as err:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(err)) from err
    content = report.model_dump(mode="json")
    if report.errors:
        n = len({e.row for e in report.errors})
        what = "would be rejected" if dry_run else "rejected; nothing was imported"
        detail = f"import {what}: {len(report.errors)} problems in {n} rows (see errors)"
        if n == 1 and report.errors[0].row == 0:
            detail = f"import {what}: {report.errors[0].column}: {report.errors[0].reason}"
        return JSONResponse({"detail": detail, "report": content}, status_code=422)
    return JSONResponse({"report": content}, status_code=200)


@router.post("/subjects", response_model=SubjectOut, status_code=status.HTTP_201_CREATED)
def create_subject(data: SubjectIn, svc: Service, caller: Officer) -> SubjectOut:
    """Create a subject; the caller's department supervises it from now."""
    with refusals():
        return svc.repository.create(data, caller)


@router.get("/subjects/{code}", response_model=SubjectOut)
def get_subject(code: str, svc: Service, caller: Viewer) -> SubjectOut:
    with refusals():
        return svc.repository.get(_code(code), caller)


@router.patch("/subjects/{code}", response_model=SubjectOut)
def update_subject(code: str, patch: SubjectPatch, svc: Service, caller: Officer) -> SubjectOut:
    """Change the fields given; the others keep their values."""
    with refusals():
        return svc.repository.update(_code(code), patch, caller)


@router.delete("/subjects/{code}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subject(code: str, svc: Service, caller: Officer) -> Response:
    """Delete a subject only the caller's department supervises (409 when shared)."""
    with refusals():
        svc.repository.delete(_code(code), caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/subjects/{code}/departments", response_model=list[LinkOut])
def subject_departments(code: str, svc: Service, caller: Viewer) -> list[LinkOut]:
    """Supervision periods of the subject, past and current."""
    with refusals():
        return svc.repository.links(_code(code), caller)


@router.post(
    "/subjects/{code}/departments",
    response_model=LinkOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        status.HTTP_202_ACCEPTED: {
            "model": LinkRequestOut,
            "description": "other departments supervise the subject: a request awaits their"
            " consent",
        }
    },
)
def link_department(code: str, data: LinkIn, svc: Service, caller: Officer) -> Response:
    """Start a supervision period (201), or ask to join one others supervise (202).

    An officer links their own department, an admin of a supervising department any.
    Joining a subject other departments supervise files a pending request that an admin of
    one of them (or the platform admin) approves. Periods cannot start in the past.
    """
    with refusals():
        done = svc.repository.link(_code(code), data, caller)
    if isinstance(done, LinkRequestOut):
        return JSONResponse(done.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    return JSONResponse(done.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


@router.get("/link-requests", response_model=list[LinkRequestOut])
def link_requests(
    svc: Service, caller: Viewer, state: LinkRequestState | None = None
) -> list[LinkRequestOut]:
    """Requests to join a subject: the caller's department's own, and those it may decide."""
    return svc.repository.link_requests(caller, state)


@router.post("/link-requests/{request_id}/approve", response_model=LinkOut)
def approve_link_request(
    request_id: Id, svc: Service, caller: Officer, data: LinkDecisionIn | None = None
) -> LinkOut:
    """Consent (admin of a supervising department): the requester supervises from now."""
    with refusals():
        return svc.repository.approve_link(request_id, data.reason if data else "", caller)


@router.post("/link-requests/{request_id}/refuse", response_model=LinkRequestOut)
def refuse_link_request(
    request_id: Id, svc: Service, caller: Officer, data: LinkDecisionIn | None = None
) -> LinkRequestOut:
    """Refuse a pending request (admin of a supervising department)."""
    with refusals():
        return svc.repository.refuse_link(request_id, data.reason if data else "", caller)


@router.delete("/subjects/{code}/departments/{department}", response_model=LinkOut)
def end_department_link(code: str, department: str, svc: Service, caller: Officer) -> LinkOut:
    """End the caller's own department's supervision now (history is kept)."""
    with refusals():
        return svc.repository.end_link(_code(code), department, caller)


@router.get("/subjects/{code}/devices", response_model=list[BindingOut])
def subject_devices(code: str, svc: Service, caller: Viewer) -> list[BindingOut]:
    with refusals():
        return svc.repository.bindings_of(_code(code), caller)


@router.get("/devices/{device_id}/binding", response_model=BindingOut)
def get_binding(device_id: str, svc: Service, caller: Viewer) -> BindingOut:
    with refusals():
        return svc.repository.binding(device_id, caller)


@router.put("/devices/{device_id}/binding", response_model=BindingOut)
def put_binding(device_id: str, data: BindingIn, svc: Service, caller: Officer) -> BindingOut:
    """Bind the device to a subject in a role.

    A device bound to nothing yet is bound by the platform admin (to any subject); officers
    move their department's devices between the department's subjects.
    """
    if not _DEVICE.match(device_id):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"device id {device_id!r} must match {_DEVICE.pattern}",
        )
    with refusals():
        return svc.repository.bind(device_id, data, caller)


@router.delete("/devices/{device_id}/binding", response_model=BindingOut)
def delete_binding(device_id: str, svc: Service, caller: Officer) -> BindingOut:
    with refusals():
        return svc.repository.unbind(device_id, caller)
