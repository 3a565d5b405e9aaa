"""Bodies and answers of the alerts routes (/api/v1)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alerts.lifecycle import AlertState, DismissReason
from alerts.records import AlertRow, TaskKind, TaskRow, TaskStatus
from alerts.silences import Matcher, SilenceRow
from api.params import INT64_MAX
from rules.models import ClueStatus, Severity


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


def alert_out(row: AlertRow) -> AlertOut:
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


def task_out(row: TaskRow) -> TaskOut:
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


def silence_out(row: SilenceRow) -> SilenceOut:
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
