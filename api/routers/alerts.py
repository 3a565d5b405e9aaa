"""/api/v1 routes of the alerts package: alerts, tasks, silences, draws and the live stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from alerts import events, queries
from alerts.audit import canonical_json
from alerts.errors import CodedError, NotFoundError
from alerts.lifecycle import Action, Actor, AlertState, DismissReason, TransitionRefused
from alerts.queries import AlertFilter
from alerts.records import AlertRow, TaskKind, TaskRow, TaskStatus
from alerts.service import AlertService
from alerts.silences import Matcher, SilenceRow, fetch_in_force
from alerts.silences import fetch as fetch_silences
from alerts.store import Outcome
from api.auth import Caller, Officer, Viewer, auth_settings, still_valid
from api.context import ApiContext, get_context
from api.errors import CodedHTTPException
from api.metrics import AuthMetrics
from api.params import INT64_MAX, Id, Offset
from rules.models import ClueStatus, Severity

router = APIRouter(prefix="/api/v1", tags=["alerts"])

Ctx = Annotated[ApiContext, Depends(get_context)]
T = TypeVar("T")
HEARTBEAT_S = 15.0


def actor_of(caller: Caller) -> Actor:
    return Actor(caller.actor, caller.department)


def _service(ctx: ApiContext) -> AlertService:
    try:
        return ctx.get(AlertService)
    except LookupError as err:
        raise HTTPException(503, "alerting is not running in this process") from err


def _call(fn: Callable[[], T]) -> T:
    """Run a service command, translating its refusals into HTTP answers."""
    try:
        return fn()
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except TransitionRefused as err:
        raise HTTPException(409, {"code": err.code, "message": str(err)}) from err
    except CodedError as err:
        raise CodedHTTPException(422, err.code, str(err)) from err


def _aware(t: datetime | None, name: str) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise HTTPException(422, f"{name} must carry a UTC offset, e.g. 2026-11-26T08:00:00Z")
    return t


# -- models -------------------------------------------------------------------------------


class AlertOut(BaseModel):
    id: int
    subject_key: str
    credit_code: str | None
    state: AlertState
    severity: Severity
    departments: list[str]
    grid: str
    opened_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    dispatched_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    dismiss_reason: DismissReason | None
    close_note: str
    clues_resolved_at: datetime | None
    last_notified_at: datetime | None
    reopen_count: int


def _alert_out(row: AlertRow) -> AlertOut:
    return AlertOut.model_validate(row, from_attributes=True)


class ClueOut(BaseModel):
    clue_id: int
    rule_id: str
    rule_version: int
    title: str
    department: str
    severity: Severity
    status: ClueStatus
    device_ids: list[str]
    evidence_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    summary: str


class TimelineEntry(BaseModel):
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class TaskOut(BaseModel):
    id: int
    kind: TaskKind
    source: str
    subject_key: str
    credit_code: str | None
    lead_department: str
    departments: list[str]
    severity: Severity
    status: TaskStatus
    due_at: datetime
    findings: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    started_at: datetime | None
    done_at: datetime | None
    draw_period: str | None


def _task_out(row: TaskRow) -> TaskOut:
    return TaskOut.model_validate(row, from_attributes=True)


class AlertDetail(AlertOut):
    clues: list[ClueOut]
    timeline: list[TimelineEntry]
    tasks: list[TaskOut]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=2000, description="why, in a sentence")


class DismissIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: DismissReason = Field(description="reason code")
    note: str = Field(default="", max_length=2000, description="needed for reason 'other'")


class ActionOut(BaseModel):
    alert: AlertOut
    task: TaskOut | None = None


class TaskUpdateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: TaskStatus
    findings: str | None = Field(default=None, max_length=20_000)


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    matcher: Matcher
    value: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime
    reason: str = Field(min_length=1, max_length=2000)


class SilencePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ends_at: datetime | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class SilenceExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ends_at: datetime = Field(description="the new end: later than now and the current end")


class SilenceOut(BaseModel):
    id: int
    department: str
    matcher: Matcher
    value: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None


def _silence_out(row: SilenceRow) -> SilenceOut:
    return SilenceOut(**{f: getattr(row, f) for f in SilenceOut.model_fields})


class DrawIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=r"^[0-9A-Za-z_.-]{1,32}$", description="e.g. 2026-Q4")
    credit_codes: list[str] | None = Field(
        default=None,
        max_length=100_000,
        description="the department's own draw; omitted: sampled by credit grade",
    )
    seed: int | None = Field(default=None, description="makes a sampled draw reproducible")


class DrawOut(BaseModel):
    id: int
    department: str
    period: str
    credit_codes: list[str]


class DrawPreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int = Field(ge=0, le=INT64_MAX, description="submit the draw with it to store this")


class GradeShareOut(BaseModel):
    grade: str
    population: int
    ratio: float
    credit_codes: list[str]


class DrawPreviewOut(BaseModel):
    department: str
    seed: int
    population: int
    grades: list[GradeShareOut]
    credit_codes: list[str]


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period: str = Field(pattern=r"^[0-9A-Za-z_.-]{1,32}$")


class MergeOut(BaseModel):
    period: str
    joint_tasks: int = Field(description="joint tasks the merge produced or joined, all depts")
    tasks: list[TaskOut] = Field(description="those the caller's department takes part in")


class NotificationOut(BaseModel):
    id: int
    alert_id: int | None
    route: str
    event: str
    status: Literal["pending", "sent", "dead", "suppressed"]
    suppressed_by: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


# -- alerts -------------------------------------------------------------------------------


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
        since=_aware(since, "since"),
        until=_aware(until, "until"),
    )
    with ctx.pool.connection() as conn:
        rows = queries.department_alerts(conn, caller.department, where, limit, offset)
    return [_alert_out(r) for r in rows]


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: Id, ctx: Ctx, caller: Viewer) -> AlertDetail:
    """An alert with its clues (and their evidence ids), timeline and tasks."""
    with ctx.pool.connection() as conn:
        record = queries.alert_record(conn, alert_id, caller.department)
    if record is None:
        raise HTTPException(404, f"alert {alert_id} not found")
    return AlertDetail(
        **_alert_out(record.alert).model_dump(),
        clues=[ClueOut.model_validate(c, from_attributes=True) for c in record.clues],
        timeline=[TimelineEntry.model_validate(t, from_attributes=True) for t in record.timeline],
        tasks=[_task_out(t) for t in record.tasks],
    )


def _action_out(outcome: Outcome) -> ActionOut:
    assert outcome.alert is not None
    return ActionOut(
        alert=_alert_out(outcome.alert), task=_task_out(outcome.task) if outcome.task else None
    )


@router.post("/alerts/{alert_id}/ack", response_model=ActionOut)
def acknowledge(alert_id: Id, ctx: Ctx, caller: Officer) -> ActionOut:
    """open -> acknowledged."""
    service = _service(ctx)
    return _action_out(_call(lambda: service.act(alert_id, Action.ACKNOWLEDGE, actor_of(caller))))


@router.post("/alerts/{alert_id}/dispatch", response_model=ActionOut)
def dispatch(alert_id: Id, ctx: Ctx, caller: Officer) -> ActionOut:
    """Create a remote supervision task, or create or join the subject's joint inspection."""
    service = _service(ctx)
    return _action_out(_call(lambda: service.act(alert_id, Action.DISPATCH, actor_of(caller))))


@router.post("/alerts/{alert_id}/resolve", response_model=ActionOut)
def resolve(alert_id: Id, ctx: Ctx, caller: Officer, body: NoteIn | None = None) -> ActionOut:
    service = _service(ctx)
    note = body.note if body else ""
    return _action_out(
        _call(lambda: service.act(alert_id, Action.RESOLVE, actor_of(caller), note=note))
    )


@router.post("/alerts/{alert_id}/dismiss", response_model=ActionOut)
def dismiss(alert_id: Id, body: DismissIn, ctx: Ctx, caller: Officer) -> ActionOut:
    service = _service(ctx)
    return _action_out(
        _call(
            lambda: service.act(alert_id, Action.DISMISS, actor_of(caller), body.reason, body.note)
        )
    )


@router.post("/alerts/{alert_id}/reopen", response_model=ActionOut)
def reopen(alert_id: Id, ctx: Ctx, caller: Officer, body: NoteIn | None = None) -> ActionOut:
    """resolved or dismissed -> open, unless the subject already has an open alert."""
    service = _service(ctx)
    note = body.note if body else ""
    return _action_out(
        _call(lambda: service.act(alert_id, Action.REOPEN, actor_of(caller), note=note))
    )


# -- tasks --------------------------------------------------------------------------------


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
    return [_task_out(r) for r in rows]


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: Id, ctx: Ctx, caller: Viewer) -> TaskOut:
    with ctx.pool.connection() as conn:
        row = queries.department_task(conn, task_id, caller.department)
    if row is None:
        raise HTTPException(404, f"task {task_id} not found")
    return _task_out(row)


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def update_task(task_id: Id, body: TaskUpdateIn, ctx: Ctx, caller: Officer) -> TaskOut:
    """planned -> in_progress -> done (done needs findings; the lead closes a joint task)."""
    service = _service(ctx)
    outcome = _call(
        lambda: service.update_task(task_id, body.status, actor_of(caller), body.findings)
    )
    assert outcome.task is not None
    return _task_out(outcome.task)


# -- silences -----------------------------------------------------------------------------


@router.get("/silences", response_model=list[SilenceOut])
def list_silences(ctx: Ctx, caller: Viewer, active: bool = False) -> list[SilenceOut]:
    """The caller's department's silences; `active=true` keeps those in force now."""
    with ctx.pool.connection() as conn:
        rows = (
            fetch_in_force(conn, caller.department)
            if active
            else fetch_silences(conn, caller.department)
        )
    return [_silence_out(r) for r in rows]


@router.post("/silences", response_model=SilenceOut, status_code=201)
def create_silence(body: SilenceIn, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Mute notifications (never the recording of alerts) for a time, with a reason."""
    service = _service(ctx)
    row = _call(
        lambda: service.create_silence(
            actor_of(caller), body.matcher, body.value, body.starts_at, body.ends_at, body.reason
        )
    )
    return _silence_out(row)


@router.get("/silences/{silence_id}", response_model=SilenceOut)
def get_silence(silence_id: Id, ctx: Ctx, caller: Viewer) -> SilenceOut:
    with ctx.pool.connection() as conn:
        rows = fetch_silences(conn, caller.department, silence_id)
    if not rows:
        raise HTTPException(404, f"silence {silence_id} not found")
    return _silence_out(rows[0])


@router.patch("/silences/{silence_id}", response_model=SilenceOut)
def change_silence(silence_id: Id, body: SilencePatch, ctx: Ctx, caller: Officer) -> SilenceOut:
    service = _service(ctx)
    _aware(body.ends_at, "ends_at")
    row = _call(
        lambda: service.change_silence(actor_of(caller), silence_id, body.ends_at, body.reason)
    )
    return _silence_out(row)


@router.post("/silences/{silence_id}/extend", response_model=SilenceOut)
def extend_silence(silence_id: Id, body: SilenceExtendIn, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Move a running silence's end later (at most 90 days after its start), audited."""
    service = _service(ctx)
    _aware(body.ends_at, "ends_at")
    row = _call(lambda: service.extend_silence(actor_of(caller), silence_id, body.ends_at))
    return _silence_out(row)


@router.delete("/silences/{silence_id}", response_model=SilenceOut)
def expire_silence(silence_id: Id, ctx: Ctx, caller: Officer) -> SilenceOut:
    """Expire now; the silence stays on record (and in the audit log)."""
    service = _service(ctx)
    row = _call(lambda: service.change_silence(actor_of(caller), silence_id, expire=True))
    return _silence_out(row)


# -- notifications ------------------------------------------------------------------------


@router.get("/notifications", response_model=list[NotificationOut])
def list_notifications(
    ctx: Ctx,
    caller: Viewer,
    status: Literal["pending", "sent", "dead", "suppressed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[NotificationOut]:
    """The outbox for the caller's alerts: what was sent, is retrying, is dead or muted."""
    with ctx.pool.connection() as conn:
        rows = queries.notifications(conn, caller.department, status, limit)
    return [NotificationOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/notifications/{notification_id}/retry", status_code=204)
def retry_notification(notification_id: Id, ctx: Ctx, caller: Officer) -> None:
    """Queue a dead delivery of the caller's alert again now; audited with the caller."""
    if not _service(ctx).retry_notification(actor_of(caller), notification_id):
        raise HTTPException(404, f"notification {notification_id} not found or not dead")


# -- double-random draws ------------------------------------------------------------------


@router.post("/inspections/draws", response_model=DrawOut, status_code=201)
def submit_draw(body: DrawIn, ctx: Ctx, caller: Officer) -> DrawOut:
    """Submit the department's draw for a period, or sample one by credit grade."""
    service = _service(ctx)
    draw_id, codes = _call(
        lambda: service.submit_draw(actor_of(caller), body.period, body.credit_codes, body.seed)
    )
    return DrawOut(id=draw_id, department=caller.department, period=body.period, credit_codes=codes)


@router.post("/inspections/draws/preview", response_model=DrawPreviewOut)
def preview_draw(body: DrawPreviewIn, ctx: Ctx, caller: Officer) -> DrawPreviewOut:
    """What a sampled draw with `seed` would pick now, by credit grade; nothing is stored."""
    service = _service(ctx)
    p = _call(lambda: service.preview_draw(actor_of(caller), body.seed))
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
    service = _service(ctx)
    tasks = _call(lambda: service.merge_draws(actor_of(caller), body.period))
    mine = [_task_out(t) for t in tasks if caller.department in t.departments]
    return MergeOut(period=body.period, joint_tasks=len(tasks), tasks=mine)


# -- live stream --------------------------------------------------------------------------


def _frame(event: events.FeedEvent) -> str:
    data = canonical_json({"kind": event.kind, "id": event.entity_id, "at": event.at,
                           **event.payload})  # fmt: skip
    return f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"


@router.get("/stream")
async def stream(
    request: Request,
    ctx: Ctx,
    caller: Viewer,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    from_id: Annotated[
        int | None, Query(ge=0, le=INT64_MAX, description="like Last-Event-ID")
    ] = None,
) -> StreamingResponse:
    """Server-sent events of alert, clue and task changes concerning the caller's department.

    Reconnect with `Last-Event-ID` (or `from_id`) to receive everything after that event;
    without either, the stream starts with the next event.
    """
    start: int | None = from_id
    if last_event_id is not None:
        try:
            start = int(last_event_id)
        except ValueError:
            raise HTTPException(422, "Last-Event-ID must be an event id (an integer)") from None
        if not 0 <= start <= INT64_MAX:
            raise HTTPException(422, f"Last-Event-ID must lie between 0 and {INT64_MAX}")
    pool, department = ctx.pool, caller.department
    try:
        service: AlertService | None = ctx.get(AlertService)
    except LookupError:
        service = None
    poll_s = service.settings.stream_poll_s if service is not None else 0.5

    def read(after: int) -> list[events.FeedEvent]:
        with pool.connection() as conn:
            return events.read(conn, department, after)

    def current() -> int:
        with pool.connection() as conn:
            return events.last_id(conn)

    recheck_s = auth_settings(ctx).stream_recheck_s

    async def generate() -> AsyncIterator[str]:
        last = start if start is not None else await run_in_threadpool(current)
        yield f"retry: 2000\n: stream of {department} from event {last}\n\n"
        beat = checked = time.monotonic()
        while not await request.is_disconnected():
            if service is not None and service.stopping:
                return
            if time.monotonic() - checked >= recheck_s:
                # A disabled person, an ended session or a revoked key stops receiving now,
                # not at the next reconnect; the reconnect then answers 401.
                checked = time.monotonic()
                if not await run_in_threadpool(still_valid, ctx, caller):
                    ctx.get(AuthMetrics).streams_revoked.inc()
                    yield 'event: signed_out\ndata: {"reason": "session ended or key revoked"}\n\n'
                    return
            seen = service.events_version if service is not None else 0
            batch = await run_in_threadpool(read, last)
            for event in batch:
                last = event.id
                yield _frame(event)
            if batch:
                beat = time.monotonic()
                continue
            if time.monotonic() - beat > HEARTBEAT_S:
                beat = time.monotonic()
                yield ": keep-alive\n\n"
            # Wake at once on a commit in this process; other instances' events within poll_s.
            deadline = time.monotonic() + poll_s
            while time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                if service is not None and service.events_version != seen:
                    break

    return StreamingResponse(
        generate(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
