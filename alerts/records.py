"""Row types of alerts and tasks, their loaders, and the side effects a transaction collects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

from alerts.audit import AuditRecord
from alerts.lifecycle import AlertState
from rules.models import Severity

Row = TypeVar("Row")


class TaskKind(StrEnum):
    REMOTE = "remote"  # 远程监管
    ONSITE = "onsite"  # 现场检查 by one department (the credit grade's method)
    JOINT = "joint"  # 联合检查


class TaskStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    DONE = "done"


class NotifyEvent(StrEnum):
    """Why a notification is sent."""

    OPENED = "opened"
    ESCALATED = "escalated"
    REOPENED = "reopened"
    REPEAT = "repeat"
    OVERDUE = "overdue"  # not acknowledged within its credit grade's time: escalated
    RESOLVED = "resolved"
    DISMISSED = "dismissed"


@dataclass(slots=True)
class AlertRow:
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
    dismiss_reason: str | None
    close_note: str
    clues_resolved_at: datetime | None
    last_notified_at: datetime | None
    reopen_count: int

    def summary(self) -> dict[str, Any]:
        """What events, notifications and the audit log say about the alert."""
        return {
            "id": self.id,
            "subject_key": self.subject_key,
            "credit_code": self.credit_code,
            "state": self.state.value,
            "severity": self.severity.value,
            "departments": sorted(self.departments),
            "grid": self.grid,
            "opened_at": self.opened_at,
            "updated_at": self.updated_at,
            "dismiss_reason": self.dismiss_reason,
            "reopen_count": self.reopen_count,
        }


ALERT_COLUMNS = (
    "id, subject_key, credit_code, state, severity, departments, grid, opened_at, updated_at,"
    " acknowledged_at, acknowledged_by, dispatched_at, closed_at, closed_by, dismiss_reason,"
    " close_note, clues_resolved_at, last_notified_at, reopen_count"
)


def _alert_row(**kw: Any) -> AlertRow:
    kw["state"] = AlertState(kw["state"])
    kw["severity"] = Severity(kw["severity"])
    return AlertRow(**kw)


def alert_from_values(values: Any) -> AlertRow:
    """An AlertRow from a row selected with ALERT_COLUMNS (in that order)."""
    return _alert_row(**dict(zip(_ALERT_FIELDS, values, strict=True)))


_ALERT_FIELDS = [c.strip() for c in ALERT_COLUMNS.split(",")]


def _fetch(
    conn: psycopg.Connection[Any],
    table: str,
    columns: str,
    row: Callable[..., Row],
    where: str,
    params: Any,
    lock: bool,
) -> list[Row]:
    sql = f"SELECT {columns} FROM {table} WHERE {where}"
    if lock:
        sql += " FOR UPDATE"
    with conn.cursor(row_factory=class_row(row)) as cur:  # type: ignore[arg-type]
        return cur.execute(sql, params).fetchall()


def fetch_alerts(
    conn: psycopg.Connection[Any], where: str, params: Any, lock: bool = False
) -> list[AlertRow]:
    return _fetch(conn, "alerts", ALERT_COLUMNS, _alert_row, where, params, lock)


def fetch_alert(
    conn: psycopg.Connection[Any], alert_id: int, lock: bool = False
) -> AlertRow | None:
    rows = fetch_alerts(conn, "id = %s", (alert_id,), lock)
    return rows[0] if rows else None


@dataclass(slots=True)
class TaskRow:
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

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "source": self.source,
            "subject_key": self.subject_key,
            "credit_code": self.credit_code,
            "lead_department": self.lead_department,
            "departments": sorted(self.departments),
            "severity": self.severity.value,
            "status": self.status.value,
            "due_at": self.due_at,
            "draw_period": self.draw_period,
        }


TASK_COLUMNS = (
    "id, kind, source, subject_key, credit_code, lead_department, departments, severity,"
    " status, due_at, findings, created_at, created_by, updated_at, started_at, done_at,"
    " draw_period"
)


def _task_row(**kw: Any) -> TaskRow:
    kw["kind"] = TaskKind(kw["kind"])
    kw["severity"] = Severity(kw["severity"])
    kw["status"] = TaskStatus(kw["status"])
    return TaskRow(**kw)


def fetch_tasks(
    conn: psycopg.Connection[Any], where: str, params: Any, lock: bool = False
) -> list[TaskRow]:
    return _fetch(conn, "tasks", TASK_COLUMNS, _task_row, where, params, lock)


class StreamKind(StrEnum):
    """What a live-stream event is about."""

    ALERT = "alert"
    CLUE = "clue"
    TASK = "task"


@dataclass(frozen=True, slots=True)
class StreamEvent:
    kind: StreamKind
    entity_id: int
    departments: tuple[str, ...]
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NotifyRequest:
    alert: AlertRow
    event: NotifyEvent
    # Only these departments' routes (and routes for every department); None: the alert's.
    to: frozenset[str] | None = None


@dataclass(slots=True)
class Changes:
    """Side effects of one transaction, written at its end in a deadlock-free order."""

    events: list[StreamEvent] = field(default_factory=list)
    notify: list[NotifyRequest] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)
    # Observations for metrics, applied only after the commit.
    acknowledged_after_s: list[float] = field(default_factory=list)

    def alert_event(self, alert: AlertRow, action: str) -> None:
        payload = {**alert.summary(), "action": action}
        self.events.append(
            StreamEvent(StreamKind.ALERT, alert.id, tuple(alert.departments), payload)
        )

    def task_event(self, task: TaskRow, action: str) -> None:
        payload = {**task.summary(), "action": action}
        self.events.append(StreamEvent(StreamKind.TASK, task.id, tuple(task.departments), payload))

    def record(
        self, actor: str, entity: str, entity_id: int | str, action: str, payload: dict[str, Any]
    ) -> None:
        self.audit.append(AuditRecord(actor, entity, str(entity_id), action, payload))
