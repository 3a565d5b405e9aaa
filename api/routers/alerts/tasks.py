"""Tasks: the department's list, one task, moving a task on."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from alerts import queries
from alerts.records import TaskKind, TaskStatus
from api.auth import Officer, Viewer
from api.context import Ctx
from api.params import Id, Offset
from api.routers.alerts.common import call, service_of
from api.routers.alerts.models import (
    TaskOut,
    TaskUpdateIn,
    task_out,
)

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks(
    ctx: Ctx,
    caller: Viewer,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    subject: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[TaskOut]:
    """Tasks the caller's department leads or takes part in."""
    with ctx.pool.connection() as conn:
        rows = queries.department_tasks(
            conn,
            caller.department,
            status.value if status else None,
            kind.value if kind else None,
            subject,
            limit,
            offset,
        )
    return [task_out(r) for r in rows]


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: Id, ctx: Ctx, caller: Viewer) -> TaskOut:
    with ctx.pool.connection() as conn:
        row = queries.department_task(conn, task_id, caller.department)
    if row is None:
        raise HTTPException(404, f"task {task_id} not found")
    return task_out(row)


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def update_task(task_id: Id, body: TaskUpdateIn, ctx: Ctx, caller: Officer) -> TaskOut:
    """planned -> in_progress -> done (done needs findings; the lead closes a joint task)."""
    service = service_of(ctx)
    outcome = call(lambda: service.update_task(task_id, body.status, caller, body.findings))
    assert outcome.task is not None
    return task_out(outcome.task)
