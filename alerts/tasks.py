"""Tasks move on (planned, in progress, done) and take findings; done resolves their alerts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from alerts import timeline, transitions
from alerts.commit import finish
from alerts.dispatch import check_task_transition
from alerts.errors import NotFoundError
from alerts.findings import PhotoUpload, record_finding
from alerts.lifecycle import Action, decide
from alerts.outcome import Outcome
from alerts.records import Changes, TaskStatus, fetch_alerts, fetch_tasks
from alerts.routing import Router
from core.principal import SYSTEM, Principal


def update(
    conn: psycopg.Connection[Any],
    router: Router,
    now: datetime,
    task_id: int,
    status: TaskStatus,
    actor: Principal,
    findings: str | None = None,
) -> Outcome:
    """Move a task on; done closes its dispatched alerts as resolved."""
    changes = Changes()
    with conn.transaction():
        tasks = fetch_tasks(conn, "id = %s", (task_id,), lock=True)
        if not tasks or actor.department not in tasks[0].departments:
            raise NotFoundError(f"task {task_id} not found")
        task = tasks[0]
        check_task_transition(task, status, actor, findings)
        conn.execute(
            "UPDATE tasks SET status = %s, updated_at = %s,"
            " started_at = CASE WHEN %s = 'in_progress' THEN %s ELSE started_at END,"
            " done_at = CASE WHEN %s = 'done' THEN %s ELSE done_at END,"
            " findings = coalesce(%s, findings) WHERE id = %s",
            (status.value, now, status.value, now, status.value, now, findings, task.id),
        )
        (task,) = fetch_tasks(conn, "id = %s", (task.id,))
        changes.task_event(task, status.value)
        changes.record(
            actor.name,
            "task",
            task.id,
            f"task.{status.value}",
            {**task.summary(), "findings": task.findings},
        )
        if status is TaskStatus.DONE:
            for alert in fetch_alerts(
                conn,
                "state = 'dispatched' AND id IN"
                " (SELECT alert_id FROM task_alerts WHERE task_id = %s) ORDER BY id",
                (task.id,),
                lock=True,
            ):
                t = decide(alert.state, alert.departments, Action.RESOLVE, SYSTEM, now,
                           note=f"task {task.id} done")  # fmt: skip
                transitions.apply(conn, alert, t, changes, {"task_id": task.id, "by": actor.name})
        pending = finish(conn, changes, router, now)
    return Outcome(None, pending, changes, task)


def add_finding(
    conn: psycopg.Connection[Any],
    router: Router,
    now: datetime,
    task_id: int,
    actor: Principal,
    text: str,
    photos: Sequence[PhotoUpload],
) -> tuple[Outcome, int]:
    """A participating department's finding on an open task (text and photos)."""
    changes = Changes()
    with conn.transaction():
        task, finding_id, hashes = record_finding(conn, task_id, actor, text, photos, now, changes)
        for (alert_id,) in conn.execute(
            "SELECT alert_id FROM task_alerts WHERE task_id = %s ORDER BY alert_id",
            (task.id,),
        ).fetchall():
            timeline.write(
                conn, alert_id, now, actor.name, "finding",
                {"task_id": task.id, "department": actor.department, "text": text.strip(),
                 "photos": hashes},
            )  # fmt: skip
        pending = finish(conn, changes, router, now)
    return Outcome(None, pending, changes, task), finding_id
