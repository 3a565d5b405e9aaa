"""Alert transitions: the state columns, timeline, stream event, notice and audit of each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import timeline
from alerts.commit import finish
from alerts.errors import NotFoundError, Refusal
from alerts.lifecycle import (
    Action,
    AlertState,
    DismissReason,
    Transition,
    TransitionRefused,
    decide,
)
from alerts.outcome import Outcome
from alerts.records import AlertRow, Changes, NotifyEvent, NotifyRequest, fetch_alert, fetch_tasks
from alerts.routing import Router
from core.principal import Principal

# The predicate of the partial unique index "one open alert per subject" (alerts migration);
# ON CONFLICT names it word for word. tests/alerts/test_store_split.py ties it to OPEN_STATES.
OPEN_SQL = "state IN ('open', 'acknowledged', 'dispatched')"

NOTIFY_ON = {
    Action.RESOLVE: NotifyEvent.RESOLVED,
    Action.AUTO_RESOLVE: NotifyEvent.RESOLVED,
    Action.DISMISS: NotifyEvent.DISMISSED,
    Action.REOPEN: NotifyEvent.REOPENED,
}


def apply(
    conn: psycopg.Connection[Any],
    alert: AlertRow,
    t: Transition,
    changes: Changes,
    detail: dict[str, Any] | None = None,
) -> AlertRow:
    """Write an allowed transition: state columns, timeline, event, notice, audit."""
    sets: dict[str, Any] = {"state": t.to_state.value, "updated_at": t.at}
    if t.action is Action.ACKNOWLEDGE:
        sets |= {"acknowledged_at": t.at, "acknowledged_by": t.actor.name}
        changes.acknowledged_after_s.append((t.at - alert.opened_at).total_seconds())
    elif t.action is Action.DISPATCH:
        sets["dispatched_at"] = t.at
    elif t.to_state in (AlertState.RESOLVED, AlertState.DISMISSED):
        sets |= {
            "closed_at": t.at,
            "closed_by": t.actor.name,
            "dismiss_reason": t.reason.value if t.reason else None,
            "close_note": t.note,
        }
    elif t.action is Action.REOPEN:
        sets |= {
            "closed_at": None,
            "closed_by": None,
            "dismiss_reason": None,
            "close_note": "",
            "acknowledged_at": None,
            "acknowledged_by": None,
            "dispatched_at": None,
            "reopen_count": alert.reopen_count + 1,
        }
    assignments = ", ".join(f"{column} = %({column})s" for column in sets)
    try:
        with conn.transaction():
            conn.execute(
                f"UPDATE alerts SET {assignments} WHERE id = %(id)s", {**sets, "id": alert.id}
            )
    except psycopg.errors.UniqueViolation as err:
        raise TransitionRefused(
            Refusal.ALREADY_OPEN,
            f"subject {alert.subject_key} already has an open alert; it cannot be reopened",
        ) from err
    new = fetch_alert(conn, alert.id)
    assert new is not None
    info = {
        "from": t.from_state.value,
        "to": t.to_state.value,
        **({"reason": t.reason.value} if t.reason else {}),
        **({"note": t.note} if t.note else {}),
        **(detail or {}),
    }
    timeline.write(conn, alert.id, t.at, t.actor.name, t.action.value, info)
    changes.alert_event(new, t.action.value)
    changes.record(t.actor.name, "alert", alert.id, f"alert.{t.action.value}", info)
    notice = NOTIFY_ON.get(t.action)
    if notice is not None:
        changes.notify.append(NotifyRequest(new, notice))
    return new


def visible(conn: psycopg.Connection[Any], alert_id: int, actor: Principal) -> AlertRow:
    """The alert, locked, when the actor's department takes part in it; else not found."""
    alert = fetch_alert(conn, alert_id, lock=True)
    if alert is None or (not actor.is_system and actor.department not in alert.departments):
        raise NotFoundError(f"alert {alert_id} not found")
    return alert


def transition(
    conn: psycopg.Connection[Any],
    router: Router,
    now: datetime,
    alert_id: int,
    action: Action,
    actor: Principal,
    reason: DismissReason | None = None,
    note: str = "",
) -> Outcome:
    """Acknowledge, resolve, dismiss or reopen, in one transaction."""
    changes = Changes()
    with conn.transaction():
        alert = visible(conn, alert_id, actor)
        t = decide(alert.state, alert.departments, action, actor, now, reason, note)
        if action is Action.RESOLVE and alert.state is AlertState.DISPATCHED:
            _close_tasks_of(conn, alert, actor, note, now, changes)
        new = apply(conn, alert, t, changes)
        pending = finish(conn, changes, router, now)
    return Outcome(new, pending, changes)


def _close_tasks_of(
    conn: psycopg.Connection[Any],
    alert: AlertRow,
    actor: Principal,
    note: str,
    now: datetime,
    changes: Changes,
) -> None:
    """Resolving a dispatched alert closes its open task, so the two never disagree: only
    the task's lead may do it, with a note that becomes the task's closing findings."""
    for task in fetch_tasks(
        conn,
        "status <> 'done' AND id IN (SELECT task_id FROM task_alerts WHERE alert_id = %s)"
        " ORDER BY id",
        (alert.id,),
        lock=True,
    ):
        if actor.department != task.lead_department:
            raise TransitionRefused(
                Refusal.LEAD_ONLY,
                f"alert {alert.id} is under task {task.id}, led by {task.lead_department}:"
                " the lead closes it",
            )
        if not note.strip():
            raise TransitionRefused(
                Refusal.FINDINGS_REQUIRED,
                "resolving a dispatched alert closes its task: add a note",
            )
        conn.execute(
            "UPDATE tasks SET status = 'done', done_at = %s, updated_at = %s,"
            " started_at = coalesce(started_at, %s), findings = %s WHERE id = %s",
            (now, now, now, note.strip(), task.id),
        )
        (done,) = fetch_tasks(conn, "id = %s", (task.id,))
        changes.task_event(done, "done")
        changes.record(
            actor.name, "task", done.id, "task.done",
            {**done.summary(), "findings": done.findings, "by_alert": alert.id},
        )  # fmt: skip
