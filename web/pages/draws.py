"""Double-random draws (双随机) in the page: the department's draw by credit grade with a
preview of who would be drawn, its history, and the merge into joint inspections."""

from __future__ import annotations

import re
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from alerts import draws
from api.auth import Officer, Viewer
from api.context import Ctx
from subjects.credit import GRADES
from subjects.repository import SubjectRepository
from web.pages.common import Refused, alert_service, attempt, pages

router = APIRouter(include_in_schema=False)
PERIOD = re.compile(r"^[0-9A-Za-z_.-]{1,32}$")  # as the draws table checks it
SEED_MAX = 2**63 - 1


def _period(period: str) -> str:
    period = period.strip()
    if not PERIOD.match(period):
        raise Refused("bad_period", f"period: {period!r} is not like 2026-Q4")
    return period


def this_quarter(ctx: Ctx) -> str:
    clock = pages(ctx).clock
    local = clock.local(clock.now())
    return f"{local.year}-Q{(local.month - 1) // 3 + 1}"


def _flash(ctx: Ctx, request: Request, caller: Officer, err: Refused) -> HTMLResponse:
    return pages(ctx).render(request, "flash.html", caller, error=err)


@router.get("/draws", response_class=HTMLResponse)
def draws_page(request: Request, ctx: Ctx, caller: Viewer) -> HTMLResponse:
    with ctx.pool.connection() as conn:
        past = draws.history(conn, caller.department)
        codes = sorted({c for d in past for c in d.credit_codes})
        names = {c: s.name for c, s in SubjectRepository.fetch_many(conn, codes).items()}
    return pages(ctx).render(
        request, "draws.html", caller, active="draws", draws=past, names=names,
        period=this_quarter(ctx), ratios=alert_service(ctx).settings.draw_ratios,
        schemes=list(GRADES.items()),
    )  # fmt: skip


@router.post("/draws/preview", response_class=HTMLResponse)
def draw_preview(
    request: Request, ctx: Ctx, caller: Officer, period: Annotated[str, Form(max_length=64)]
) -> HTMLResponse:
    """Who a sampled draw would pick now (a fresh seed), by credit grade, before storing it."""
    service = alert_service(ctx)
    seed = secrets.randbelow(SEED_MAX)
    try:
        period = _period(period)
        preview = attempt(lambda: service.preview_draw(caller, seed))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    with ctx.pool.connection() as conn:
        subjects = SubjectRepository.fetch_many(conn, preview.codes)
    return pages(ctx).render(
        request, "draw_preview.html", caller, preview=preview, period=period, subjects=subjects
    )


@router.post("/draws")
def submit_draw(
    request: Request,
    ctx: Ctx,
    caller: Officer,
    period: Annotated[str, Form(max_length=64)],
    seed: Annotated[int, Form(ge=0, le=SEED_MAX)],
    expected: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Store exactly the previewed draw (refused if the department's subjects changed)."""
    service = alert_service(ctx)
    try:
        period = _period(period)
        attempt(lambda: service.confirm_draw(caller, period, seed, expected or []))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    return Response(status_code=204, headers={"HX-Redirect": "/draws"})


@router.get("/draws/merge/preview", response_class=HTMLResponse)
def merge_preview(request: Request, ctx: Ctx, caller: Officer, period: str) -> HTMLResponse:
    """The subjects a merge of `period` would inspect jointly, with the departments."""
    try:
        period = _period(period)
    except Refused as err:
        return _flash(ctx, request, caller, err)
    with ctx.pool.connection() as conn:
        candidates = draws.joint_candidates(conn, caller.department, period)
        subjects = SubjectRepository.fetch_many(conn, [c for c, _ in candidates])
    return pages(ctx).render(
        request, "merge_preview.html", caller, period=period, candidates=candidates,
        subjects=subjects,
    )  # fmt: skip


@router.post("/draws/merge", response_class=HTMLResponse)
def merge(
    request: Request, ctx: Ctx, caller: Officer, period: Annotated[str, Form(max_length=64)]
) -> HTMLResponse:
    service = alert_service(ctx)
    try:
        period = _period(period)
        tasks = attempt(lambda: service.merge_draws(caller, period))
    except Refused as err:
        return _flash(ctx, request, caller, err)
    mine = [t for t in tasks if caller.department in t.departments]
    with ctx.pool.connection() as conn:
        subjects = SubjectRepository.fetch_many(conn, [t.subject_key for t in mine])
    return pages(ctx).render(
        request, "merge_result.html", caller, period=period, tasks=mine, subjects=subjects
    )
