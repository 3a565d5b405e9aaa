"""The subject library and each subject's file (一企一档), with the CSV import and its report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from alerts import queries as alert_queries
from api.auth import Officer, Viewer
from ingest import queries as readings
from rules import queries as clue_queries
from subjects.importer import ImportFormat
from subjects.repository import SubjectNotFoundError, SubjectQuery
from web.pages.common import Ctx, pages, subject_actor, subjects_service

router = APIRouter(include_in_schema=False)


@router.get("/subjects", response_class=HTMLResponse)
def library(request: Request, ctx: Ctx, caller: Viewer, q: str = "") -> HTMLResponse:
    svc = subjects_service(ctx)
    found = svc.repository.search(
        SubjectQuery(q=q.strip() or None, limit=100), subject_actor(caller)
    )
    return pages(ctx).render(
        request, "subjects.html", caller, active="subjects", found=found, q=q, report=None
    )


@router.post("/subjects/import", response_class=HTMLResponse)
async def import_csv(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    file: Annotated[UploadFile, File()],
    dry_run: bool = False,
) -> HTMLResponse:
    """Runs the library's importer (all rows or none) and shows its row-and-column report."""
    svc = subjects_service(ctx)
    body = await file.read(svc.importer.max_bytes + 1)
    if len(body) > svc.importer.max_bytes:
        raise HTTPException(413, f"the import may hold at most {svc.importer.max_bytes} bytes")
    report = await run_in_threadpool(
        svc.importer.run, body, ImportFormat.CSV, subject_actor(caller), dry_run
    )
    return pages(ctx).render(request, "import_report.html", caller, report=report)


@router.get("/subjects/{code}", response_class=HTMLResponse)
def subject_file(code: str, request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    svc = subjects_service(ctx)
    actor = subject_actor(caller)
    try:
        subject = svc.repository.get(code.upper(), actor)
        links = svc.repository.links(subject.credit_code, actor)
        bindings = svc.repository.bindings_of(subject.credit_code, actor)
    except SubjectNotFoundError as err:
        raise HTTPException(404, str(err)) from err
    ids = [b.device_id for b in bindings]
    with ctx.pool.connection() as conn:
        devices = {d.device_id: d for d in readings.devices(conn, ids)}
        last = readings.last_readings(conn, ids)
        alerts = alert_queries.subject_alerts(conn, subject.credit_code, caller.department)
        clues = clue_queries.subject_clues(conn, subject.credit_code, [caller.department])
        tasks = alert_queries.tasks_of(
            conn, caller.department, open_only=False, credit_code=subject.credit_code
        )
        findings = {t.id: alert_queries.findings(conn, t.id) for t in tasks}
    return pages(ctx).render(
        request, "subject.html", caller, active="subjects", s=subject, links=links,
        bindings=bindings, devices=devices, last=last, alerts=alerts, clues=clues, tasks=tasks,
        findings=findings,
    )  # fmt: skip
