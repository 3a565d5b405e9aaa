"""The subject library and each subject's file (一企一档), with the CSV import and its report."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse

from alerts import queries as alert_queries
from api.auth import Caller, Officer, Role, Viewer
from api.context import Ctx
from ingest import queries as readings
from rules import queries as clue_queries
from rules.limit_lines import limit_lines
from rules.service import RuleService
from subjects.credit import GRADES
from subjects.importer import ImportFormat
from subjects.models import ChangeKind, DeviceRole, RiskLevel
from subjects.repository import SubjectNotFoundError, SubjectQuery
from subjects.schema import LinkRequestState
from web.pages.common import pages, subjects_service
from web.pages.subject_forms import Errors

router = APIRouter(include_in_schema=False)
# The file's charts: hourly means over the last week, the span an officer reviews.
CHART_DAYS = 7
# Snapshot fields whose change the file's record names (the rest is bookkeeping).
RECORD_FIELDS = (
    "name", "address", "grid", "industry", "latitude", "longitude", "credit_scheme",
    "credit_grade", "risk_level", "tags", "attributes",
)  # fmt: skip


def render_library(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    q: str = "",
    status_code: int = 200,
    errors: Errors | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    """The library; after a refused new-subject form, with its errors beside its fields."""
    svc = subjects_service(ctx)
    found = svc.repository.search(SubjectQuery(q=q.strip() or None, limit=100), caller)
    return pages(ctx).render(
        request, "subjects.html", caller, status_code, active="subjects", found=found, q=q,
        report=None, errors=errors or {}, form=form or {},
        grades={scheme.value: [g.value for g in grades] for scheme, grades in GRADES.items()},
        risk_levels=[r.value for r in RiskLevel],
    )  # fmt: skip


@router.get("/subjects", response_class=HTMLResponse)
def library(request: Request, ctx: Ctx, caller: Viewer, q: str = "") -> HTMLResponse:
    return render_library(request, ctx, caller, q)


@router.post("/subjects/import", response_class=HTMLResponse)
async def import_csv(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    file: Annotated[UploadFile, File()],
    dry_run: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """Runs the library's importer (all rows or none) and shows its row-and-column report."""
    svc = subjects_service(ctx)
    body = await file.read(svc.importer.max_bytes + 1)
    if len(body) > svc.importer.max_bytes:
        raise HTTPException(413, f"the import may hold at most {svc.importer.max_bytes} bytes")
    report = await run_in_threadpool(svc.importer.run, body, ImportFormat.CSV, caller, dry_run)
    return pages(ctx).render(request, "import_report.html", caller, report=report)


def _changed_fields(entry: alert_queries.AuditEntry) -> list[str]:
    before = entry.payload.get("before") or {}
    after = entry.payload.get("after") or {}
    if entry.action != ChangeKind.UPDATED.value:
        return []
    return [f for f in RECORD_FIELDS if before.get(f) != after.get(f)]


def render_file(
    request: Request,
    ctx: Ctx,
    caller: Caller,
    code: str,
    status_code: int = 200,
    errors: Errors | None = None,
    form: dict[str, str] | None = None,
    section: str = "",
) -> HTMLResponse:
    """The subject file; after a refused form, with its errors beside its fields."""
    svc = subjects_service(ctx)
    repo = svc.repository
    try:
        subject = repo.get(code.upper(), caller)
        links = repo.links(subject.credit_code, caller)
        bindings = repo.bindings_of(subject.credit_code, caller)
        credit = repo.credit_history(subject.credit_code, caller)
    except SubjectNotFoundError as err:
        raise HTTPException(404, str(err)) from err
    requests = repo.link_requests(caller, code=subject.credit_code)
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
        record = alert_queries.subject_audit(conn, subject.credit_code)
    officer = caller.role.rank >= Role.OFFICER.rank
    supervises = caller.department in subject.departments
    return pages(ctx).render(
        request, "subject.html", caller, status_code, active="subjects", s=subject,
        links=links, bindings=bindings, devices=devices, last=last, alerts=alerts,
        clues=clues, tasks=tasks, findings=findings, credit=credit, requests=requests,
        record=[(e, _changed_fields(e)) for e in record],
        charts=sorted({(r.device_id, r.metric) for r in last}),
        grades={scheme.value: [g.value for g in grades] for scheme, grades in GRADES.items()},
        roles=[r.value for r in DeviceRole],
        risk_levels=[r.value for r in RiskLevel],
        pending=LinkRequestState.PENDING,
        # What the page offers is what the library allows (it checks again on every POST).
        may_edit=officer and supervises,
        may_link=officer and (supervises or caller.is_platform_admin),
        may_bind=officer and (supervises or caller.is_platform_admin),
        may_decide=caller.is_platform_admin or (caller.role is Role.ADMIN and supervises),
        errors=errors or {}, form=form or {}, section=section,
        done=request.query_params.get("done", ""),
    )  # fmt: skip


@router.get("/subjects/{code}", response_class=HTMLResponse)
def subject_file(code: str, request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    return render_file(request, ctx, caller, code)


@router.get("/subjects/{code}/readings/{device_id}/{metric}")
def readings_chart(
    code: str, device_id: str, metric: str, ctx: Ctx, caller: Viewer
) -> JSONResponse:
    """Hourly means of one bound device's metric over the last week, with the limits the
    rules judge it against (fixed, the subject's permit values, or dated), for chart.js."""
    svc = subjects_service(ctx)
    try:
        bound = svc.repository.bindings_of(code.upper(), caller)
    except SubjectNotFoundError as err:
        raise HTTPException(404, str(err)) from err
    if device_id not in {b.device_id for b in bound}:
        raise HTTPException(404, f"device {device_id!r} is not bound to {code}")
    now = pages(ctx).clock.now()
    with ctx.pool.connection() as conn:
        points = readings.hourly_means(
            conn, device_id, metric, now - timedelta(days=CHART_DAYS), now
        )
    lines: list[dict[str, Any]] = []
    context = svc.directory.context(device_id)
    try:
        rules = ctx.get(RuleService).ruleset.rules
    except LookupError:
        rules = ()  # rules run in another process: the chart has no limit line here
    if context is not None:
        lines = [
            {"value": line.value, "rule_id": line.rule_id}
            for line in limit_lines(rules, context, metric, now)
        ]
    return JSONResponse({
        "series": [{
            "name": f"{device_id} · {metric}",
            "data": [[p.time.isoformat(), p.value] for p in points],
        }],
        "limit": min((line["value"] for line in lines), default=None),
        "limits": lines, "span": None, "valid_ratio": None, "triggers": [],
    })  # fmt: skip
