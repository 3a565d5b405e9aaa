"""Alerts: the department's list, one alert's record, and the officer's actions on it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from alerts import queries
from alerts.lifecycle import Action, AlertState
from alerts.outcome import Outcome
from alerts.queries import AlertFilter
from api.auth import Officer, Viewer
from api.context import Ctx
from api.params import Id, Offset, aware
from api.routers.alerts.common import call, service_of
from api.routers.alerts.models import (
    ActionOut,
    AlertDetail,
    AlertOut,
    ClueOut,
    DismissIn,
    NoteIn,
    TimelineEntry,
    alert_out,
    task_out,
)
from rules.models import Severity

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts", response_model=list[AlertOut])
def list_alerts(
    ctx: Ctx,
    caller: Viewer,
    state: Annotated[list[AlertState] | None, Query()] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    department: str | None = None,
    grid: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    """Alerts the caller's department takes part in, newest first; `since`/`until` bound
    the opening time."""
    where = AlertFilter(
        states=tuple(s.value for s in state or ()),
        severities=tuple(s.value for s in severity or ()),
        department=department,
        grid=grid,
        subject=subject,
        since=aware(since, "since"),
        until=aware(until, "until"),
    )
    with ctx.pool.connection() as conn:
        rows = queries.department_alerts(conn, caller.department, where, limit, offset)
    return [alert_out(r) for r in rows]


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: Id, ctx: Ctx, caller: Viewer) -> AlertDetail:
    """An alert with its clues (and their evidence ids), timeline and tasks."""
    with ctx.pool.connection() as conn:
        record = queries.alert_record(conn, alert_id, caller.department)
    if record is None:
        raise HTTPException(404, f"alert {alert_id} not found")
    return AlertDetail(
        **alert_out(record.alert).model_dump(),
        clues=[ClueOut.model_validate(c, from_attributes=True) for c in record.clues],
        timeline=[TimelineEntry.model_validate(t, from_attributes=True) for t in record.timeline],
        tasks=[task_out(t) for t in record.tasks],
    )


def _action_out(outcome: Outcome) -> ActionOut:
    assert outcome.alert is not None
    return ActionOut(
        alert=alert_out(outcome.alert), task=task_out(outcome.task) if outcome.task else None
    )


@router.post("/alerts/{alert_id}/ack", response_model=ActionOut)
def acknowledge(alert_id: Id, ctx: Ctx, caller: Officer) -> ActionOut:
    """open -> acknowledged."""
    service = service_of(ctx)
    return _action_out(call(lambda: service.act(alert_id, Action.ACKNOWLEDGE, caller)))


@router.post("/alerts/{alert_id}/dispatch", response_model=ActionOut)
def dispatch(alert_id: Id, ctx: Ctx, caller: Officer) -> ActionOut:
    """Create a remote supervision task, or create or join the subject's joint inspection."""
    service = service_of(ctx)
    return _action_out(call(lambda: service.act(alert_id, Action.DISPATCH, caller)))


@router.post("/alerts/{alert_id}/resolve", response_model=ActionOut)
def resolve(alert_id: Id, ctx: Ctx, caller: Officer, body: NoteIn | None = None) -> ActionOut:
    service = service_of(ctx)
    note = body.note if body else ""
    return _action_out(call(lambda: service.act(alert_id, Action.RESOLVE, caller, note=note)))


@router.post("/alerts/{alert_id}/dismiss", response_model=ActionOut)
def dismiss(alert_id: Id, body: DismissIn, ctx: Ctx, caller: Officer) -> ActionOut:
    service = service_of(ctx)
    return _action_out(
        call(lambda: service.act(alert_id, Action.DISMISS, caller, body.reason, body.note))
    )


@router.post("/alerts/{alert_id}/reopen", response_model=ActionOut)
def reopen(alert_id: Id, ctx: Ctx, caller: Officer, body: NoteIn | None = None) -> ActionOut:
    """resolved or dismissed -> open, unless the subject already has an open alert."""
    service = service_of(ctx)
    note = body.note if body else ""
    return _action_out(call(lambda: service.act(alert_id, Action.REOPEN, caller, note=note)))
