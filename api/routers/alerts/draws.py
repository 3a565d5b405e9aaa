"""Double-random draws: submit, preview, list and merge into joint inspections."""

from __future__ import annotations

from fastapi import APIRouter

from alerts import queries
from api.auth import Officer, Viewer
from api.context import Ctx
from api.routers.alerts.common import call, service_of
from api.routers.alerts.models import (
    DrawIn,
    DrawOut,
    DrawPreviewIn,
    DrawPreviewOut,
    GradeShareOut,
    MergeIn,
    MergeOut,
    task_out,
)

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.post("/inspections/draws", response_model=DrawOut, status_code=201)
def submit_draw(body: DrawIn, ctx: Ctx, caller: Officer) -> DrawOut:
    """Submit the department's draw for a period, or sample one by credit grade."""
    service = service_of(ctx)
    draw_id, codes = call(
        lambda: service.submit_draw(caller, body.period, body.credit_codes, body.seed)
    )
    return DrawOut(id=draw_id, department=caller.department, period=body.period, credit_codes=codes)


@router.post("/inspections/draws/preview", response_model=DrawPreviewOut)
def preview_draw(body: DrawPreviewIn, ctx: Ctx, caller: Officer) -> DrawPreviewOut:
    """What a sampled draw with `seed` would pick now, by credit grade; nothing is stored."""
    service = service_of(ctx)
    p = call(lambda: service.preview_draw(caller, body.seed))
    grades = [
        GradeShareOut(grade=g.grade.value, population=g.population, ratio=g.ratio,
                      credit_codes=list(g.drawn))
        for g in p.grades
    ]  # fmt: skip
    return DrawPreviewOut(department=p.department, seed=p.seed, population=p.population,
                          grades=grades, credit_codes=p.codes)  # fmt: skip


@router.get("/inspections/draws", response_model=list[DrawOut])
def list_draws(ctx: Ctx, caller: Viewer, period: str | None = None) -> list[DrawOut]:
    with ctx.pool.connection() as conn:
        rows = queries.department_draws(conn, caller.department, period)
    return [DrawOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/inspections/draws/merge", response_model=MergeOut)
def merge_draws(body: MergeIn, ctx: Ctx, caller: Officer) -> MergeOut:
    """Subjects drawn by two or more departments in the period become joint inspections
    (one per subject; running the merge again joins the same tasks)."""
    service = service_of(ctx)
    tasks = call(lambda: service.merge_draws(caller, body.period))
    mine = [task_out(t) for t in tasks if caller.department in t.departments]
    return MergeOut(period=body.period, joint_tasks=len(tasks), tasks=mine)
