"""Dispatch: remote supervision or joint inspection, the lead department, SLA and task states."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.errors import Refusal
from alerts.lifecycle import TransitionRefused
from alerts.records import Changes, TaskKind, TaskRow, TaskStatus, fetch_tasks
from alerts.settings import AlertsSettings
from alerts.subjects_port import SubjectView, is_cross_department
from core.principal import Principal
from rules.models import Severity
from subjects.models import SupervisionMethod


@dataclass(frozen=True, slots=True)
class DispatchPlan:
    """What a dispatch creates: the kind of task, who leads, who takes part, when it is due."""

    kind: TaskKind
    lead: str
    participants: frozenset[str]
    due_at: datetime
    reason: str


def choose_lead(
    participants: Collection[str],
    subject: SubjectView | None,
    lead_by_domain: Mapping[str, str],
    severity_by_department: Mapping[str, Severity],
) -> tuple[str, str]:
    """The lead department of a joint inspection and why it was chosen.

    1. the subject's industry, then its tags in sorted order, looked up in `lead_by_domain`;
       the first hit whose department takes part leads;
    2. else the department whose clues are most severe;
    3. ties by department code, so the choice is stable.
    """
    if subject is not None:
        for domain in [subject.industry, *sorted(subject.tags)]:
            lead = lead_by_domain.get(domain)
            if lead is not None and lead in participants:
                return lead, f"domain {domain!r} is led by {lead}"
    ranked = sorted(
        participants,
        key=lambda d: (-(severity_by_department.get(d, Severity.INFO).rank), d),
    )
    return ranked[0], f"{ranked[0]} raised the most severe clues"


def method_of(subject: SubjectView | None, settings: AlertsSettings) -> SupervisionMethod:
    """The subject's credit grade's supervision method; remote for an unknown subject."""
    if subject is None:
        return SupervisionMethod.REMOTE
    handling = settings.credit_handling.get(subject.credit_grade)
    return handling.method if handling is not None else SupervisionMethod.REMOTE


def plan_dispatch(
    clue_departments: Collection[str],
    severity_by_department: Mapping[str, Severity],
    subject: SubjectView | None,
    severity: Severity,
    settings: AlertsSettings,
    now: datetime,
) -> DispatchPlan:
    """Remote supervision, an on-site inspection, or a joint inspection (DESIGN: §三 of the plan).

    Joint when the clues span two or more departments, or when the subject is in the
    cross-department library and either the severity reaches `joint_min_severity` or the
    subject's credit grade is handled on site (`credit_handling.<grade>.method`). Otherwise
    the one department concerned handles it: on site when its grade says so, else remotely.
    Participants of a joint inspection are the clues' departments plus, for a
    cross-department subject, every department supervising it now.
    """
    if not clue_departments:
        raise ValueError("an alert to dispatch has no department")
    due_at = now + timedelta(hours=settings.sla_hours[severity])
    cross = is_cross_department(subject)
    on_site = method_of(subject, settings) is SupervisionMethod.ON_SITE
    grade = subject.credit_grade.value if subject is not None else ""
    if len(set(clue_departments)) >= 2:
        reason = "clues from several departments"
    elif cross and severity.rank >= settings.joint_min_severity.rank:
        reason = f"cross-department subject at {severity.value}"
    elif cross and on_site:
        reason = f"cross-department subject of credit grade {grade}: on site"
    else:
        (only,) = set(clue_departments)
        if on_site:
            return DispatchPlan(TaskKind.ONSITE, only, frozenset({only}), due_at,
                                f"one department; credit grade {grade}: on site")  # fmt: skip
        return DispatchPlan(TaskKind.REMOTE, only, frozenset({only}), due_at, "one department")
    participants = set(clue_departments)
    if cross and subject is not None:
        participants |= subject.departments
    lead, why = choose_lead(participants, subject, settings.lead_by_domain, severity_by_department)
    return DispatchPlan(
        TaskKind.JOINT, lead, frozenset(participants), due_at, f"{reason}; lead: {why}"
    )


# Task states: planned -> in_progress -> done (with findings); planned -> done is allowed for
# a desk check that needed no visit.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PLANNED: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.DONE}),
    TaskStatus.IN_PROGRESS: frozenset({TaskStatus.DONE}),
    TaskStatus.DONE: frozenset(),
}


def check_task_transition(
    task: TaskRow, target: TaskStatus, actor: Principal, findings: str | None
) -> None:
    """Raise TransitionRefused when `actor` may not move `task` to `target`."""
    if actor.department not in task.departments:
        raise TransitionRefused(
            Refusal.OTHER_DEPARTMENT, f"{actor.department} takes no part in task {task.id}"
        )
    if target not in TASK_TRANSITIONS[task.status]:
        allowed = ", ".join(sorted(s.value for s in TASK_TRANSITIONS[task.status])) or "nothing"
        raise TransitionRefused(
            Refusal.NOT_ALLOWED,
            f"task {task.id} is {task.status.value}; it can move to: {allowed}",
        )
    if target is TaskStatus.DONE and not (findings or "").strip():
        raise TransitionRefused(Refusal.FINDINGS_REQUIRED, "a task is done only with its findings")
    if (
        task.kind is TaskKind.JOINT
        and target is TaskStatus.DONE
        and (actor.department != task.lead_department)
    ):
        raise TransitionRefused(
            Refusal.LEAD_ONLY,
            f"only the lead department {task.lead_department} closes a joint task",
        )


def open_joint_task(
    conn: psycopg.Connection[Any],
    subject_key: str,
    credit_code: str | None,
    plan: DispatchPlan,
    severity: Severity,
    source: str,
    actor: Principal,
    now: datetime,
    changes: Changes,
    draw_period: str | None = None,
) -> tuple[TaskRow, bool]:
    """The subject's open joint inspection, created if there is none; returns (task, created).

    The partial unique index makes this safe under concurrency: a racing insert turns into
    an update of the row the other transaction created, and both see one task.
    """
    row = conn.execute(
        "INSERT INTO tasks (kind, source, subject_key, credit_code, lead_department,"
        " departments, severity, status, due_at, created_at, created_by, updated_at,"
        " draw_period) VALUES ('joint', %s, %s, %s, %s, %s, %s, 'planned', %s, %s, %s, %s, %s)"
        " ON CONFLICT (subject_key) WHERE kind = 'joint' AND status IN ('planned', 'in_progress')"
        " DO UPDATE SET updated_at = EXCLUDED.updated_at RETURNING id, xmax = 0",
        (
            source,
            subject_key,
            credit_code,
            plan.lead,
            sorted(plan.participants),
            severity.value,
            plan.due_at,
            now,
            actor.name,
            now,
            draw_period,
        ),
    ).fetchone()
    assert row is not None
    task_id, created = int(row[0]), bool(row[1])
    (task,) = fetch_tasks(conn, "id = %s", (task_id,), lock=True)
    if created:
        changes.task_event(task, "created")
        changes.record(actor.name, "task", task.id, "task.created", {**task.summary()})
        return task, True
    # Attach: widen participants, raise severity and pull the due time in when needed.
    departments = sorted(set(task.departments) | plan.participants)
    severity_ = severity if severity.rank > task.severity.rank else task.severity
    due_at = min(task.due_at, plan.due_at)
    if (
        departments != sorted(task.departments)
        or severity_ != task.severity
        or (due_at != task.due_at)
    ):
        conn.execute(
            "UPDATE tasks SET departments = %s, severity = %s, due_at = %s, updated_at = %s"
            " WHERE id = %s",
            (departments, severity_.value, due_at, now, task.id),
        )
        task.departments, task.severity, task.due_at = departments, severity_, due_at
        changes.task_event(task, "updated")
        changes.record(actor.name, "task", task.id, "task.updated", {**task.summary()})
    return task, False


def create_single_task(
    conn: psycopg.Connection[Any],
    subject_key: str,
    credit_code: str | None,
    plan: DispatchPlan,
    severity: Severity,
    actor: Principal,
    now: datetime,
    changes: Changes,
) -> TaskRow:
    """A remote-supervision or on-site task of the plan's one department."""
    row = conn.execute(
        "INSERT INTO tasks (kind, source, subject_key, credit_code, lead_department,"
        " departments, severity, status, due_at, created_at, created_by, updated_at)"
        " VALUES (%s, 'alert', %s, %s, %s, %s, %s, 'planned', %s, %s, %s, %s)"
        " RETURNING id",
        (
            plan.kind.value,
            subject_key,
            credit_code,
            plan.lead,
            [plan.lead],
            severity.value,
            plan.due_at,
            now,
            actor.name,
            now,
        ),
    ).fetchone()
    assert row is not None
    (task,) = fetch_tasks(conn, "id = %s", (row[0],))
    changes.task_event(task, "created")
    changes.record(actor.name, "task", task.id, "task.created", {**task.summary()})
    return task
