"""Dispatching an alert: its plan (alerts.dispatch decides), its task, the transition."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import transitions
from alerts.commit import finish
from alerts.dispatch import DispatchPlan, create_single_task, open_joint_task, plan_dispatch
from alerts.lifecycle import Action, decide
from alerts.outcome import Outcome
from alerts.records import AlertRow, Changes, TaskKind
from alerts.routing import Router
from alerts.settings import AlertsSettings
from alerts.subjects_port import SubjectLookup
from core.principal import Principal
from rules.models import Severity


def plan(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    alert: AlertRow,
    now: datetime,
) -> DispatchPlan:
    """The plan from the alert's clues: each department at its most severe clue."""
    rows = conn.execute(
        "SELECT department, severity FROM alert_clues WHERE alert_id = %s", (alert.id,)
    ).fetchall()
    by_department: dict[str, Severity] = {}
    for department, severity in rows:
        s, prev = Severity(severity), by_department.get(department)
        if prev is None or s.rank > prev.rank:
            by_department[department] = s
    subject = subjects.subject(alert.credit_code) if alert.credit_code else None
    return plan_dispatch(
        by_department.keys(), by_department, subject, alert.severity, settings, now
    )


def preview(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    now: datetime,
    alert_id: int,
    actor: Principal,
) -> DispatchPlan:
    """The plan a dispatch would follow now, writing nothing (the page's preview)."""
    with conn.transaction():
        alert = transitions.visible(conn, alert_id, actor)
        decide(alert.state, alert.departments, Action.DISPATCH, actor, now)
        return plan(conn, settings, subjects, alert, now)


def dispatch(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    router: Router,
    now: datetime,
    alert_id: int,
    actor: Principal,
) -> Outcome:
    """Create (or join) the alert's task as the dispatch policy says."""
    changes = Changes()
    with conn.transaction():
        alert = transitions.visible(conn, alert_id, actor)
        t = decide(alert.state, alert.departments, Action.DISPATCH, actor, now)
        p = plan(conn, settings, subjects, alert, now)
        if p.kind is TaskKind.JOINT:
            task, _ = open_joint_task(
                conn,
                alert.subject_key,
                alert.credit_code,
                p,
                alert.severity,
                "alert",
                actor,
                now,
                changes,
            )
        else:
            task = create_single_task(
                conn, alert.subject_key, alert.credit_code, p, alert.severity, actor, now, changes
            )
        conn.execute(
            "INSERT INTO task_alerts (task_id, alert_id, attached_at) VALUES (%s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (task.id, alert.id, now),
        )
        # Participants of a joint inspection see the alert from now on.
        departments = sorted(set(alert.departments) | set(task.departments))
        conn.execute("UPDATE alerts SET departments = %s WHERE id = %s", (departments, alert.id))
        alert.departments = departments
        new = transitions.apply(
            conn,
            alert,
            t,
            changes,
            {"task_id": task.id, "task_kind": task.kind.value, "lead": task.lead_department,
             "plan": p.reason},
        )  # fmt: skip
        pending = finish(conn, changes, router, now)
    return Outcome(new, pending, changes, task)
