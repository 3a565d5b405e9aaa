"""Tasks: mine and my department's, overdue markers, findings with photos, the lead closes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from alerts import queries
from alerts.findings import MAX_PHOTO_BYTES, PhotoUpload, verified_photo
from alerts.records import TaskStatus
from api.auth import Officer, Viewer
from api.context import Ctx
from subjects.repository import SubjectRepository
from web.pages.common import Refused, alert_service, attempt, pages, subject_of

router = APIRouter(include_in_schema=False)


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(
    request: Request, ctx: Ctx, caller: Viewer, lead: bool = False, done: bool = False
) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        rows = queries.tasks_of(conn, caller.department, lead_only=lead, open_only=not done)
        names = SubjectRepository.fetch_many(conn, [t.credit_code for t in rows if t.credit_code])
    return pages(ctx).render(
        request, "tasks.html", caller, active="tasks", rows=rows, names=names, lead=lead,
        done=done,
    )  # fmt: skip


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(task_id: int, request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        record = queries.task_record(conn, task_id, caller.department)
        if record is None:
            raise HTTPException(404, f"task {task_id} not found")
        subject = subject_of(conn, record.task.credit_code)
    return pages(ctx).render(
        request, "task.html", caller, active="tasks", record=record, t=record.task,
        subject=subject,
    )  # fmt: skip


@router.post("/tasks/{task_id}/findings")
async def add_finding(
    task_id: int,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    text: Annotated[str, Form(max_length=20_000)] = "",
    photos: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    uploads = []
    for photo in photos or []:
        content = await photo.read(MAX_PHOTO_BYTES + 1)
        if content:
            uploads.append(PhotoUpload(photo.filename or "photo", content))
    service = alert_service(ctx)
    try:
        attempt(lambda: service.add_finding(task_id, caller, text, uploads))
    except Refused as err:
        return pages(ctx).render(request, "flash.html", caller, error=err)
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/tasks/{task_id}/close")
def close_task(
    task_id: int,
    request: Request,
    ctx: Ctx,
    caller: Officer,
    findings: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """The lead closes the task with its conclusion; its dispatched alerts resolve with it."""
    service = alert_service(ctx)
    try:
        attempt(lambda: service.update_task(task_id, TaskStatus.DONE, caller, findings))
    except Refused as err:
        return pages(ctx).render(request, "flash.html", caller, error=err)
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.get("/findings/photos/{sha256}")
def finding_photo(sha256: str, ctx: Ctx, caller: Viewer) -> Response:
    with ctx.pool.connection() as conn:
        photo = queries.finding_photo(conn, sha256, caller.department)
    if photo is None:
        raise HTTPException(404, f"photo {sha256} not found")
    try:
        content = verified_photo(photo.content, photo.sha256)
    except ValueError as err:
        raise HTTPException(500, str(err)) from err
    return Response(
        content, media_type=photo.content_type,
        headers={"X-Content-SHA256": photo.sha256, "Cache-Control": "private, max-age=86400"},
    )  # fmt: skip
