"""Clues join their subject's alert: one open alert per subject, its severity and departments
recomputed from its clues, a recent resolved one reopened instead of a new one opened."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts import handoff, payloads, timeline, transitions
from alerts.commit import finish
from alerts.lifecycle import Action, decide
from alerts.outcome import Outcome
from alerts.records import (
    AlertRow,
    Changes,
    NotifyEvent,
    NotifyRequest,
    fetch_alert,
    fetch_alerts,
    fetch_tasks,
)
from alerts.routing import Router
from alerts.settings import AlertsSettings
from alerts.subjects_port import SubjectLookup
from core.principal import SYSTEM
from rules.models import ClueEvent, ClueStatus, Severity

_OPEN = transitions.OPEN_SQL


def subject_key_of(event: ClueEvent) -> str:
    """Alerts group by subject; a clue on an unbound device groups by that device."""
    if event.credit_code:
        return event.credit_code
    return "device:" + (event.device_ids[0] if event.device_ids else event.fingerprint)


def apply_clue(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    router: Router,
    now: datetime,
    event: ClueEvent,
    advance: bool = False,
) -> Outcome:
    """Record a clue transition on its subject's alert, opening one when there is none.

    With `advance`, the ledger watermark moves to the event's change number in the same
    transaction; a change already past the watermark is not applied twice.
    """
    key = subject_key_of(event)
    changes = Changes()
    with conn.transaction():
        if advance and not handoff.claim(conn, event.seq):
            return Outcome(None, 0, changes)
        if event.seq:
            handoff.settled(conn, event.clue_id)
        # Serialises the clues of one subject; the partial unique index is the invariant.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 4242))", (key,))
        changes.record(
            "rules", "clue", event.clue_id, f"clue.{event.status.value}", payloads.clue_audit(event)
        )
        known = conn.execute(
            "SELECT alert_id FROM alert_clues WHERE clue_id = %s", (event.clue_id,)
        ).fetchone()
        alert: AlertRow | None
        if known is not None:
            alert = fetch_alert(conn, int(known[0]), lock=True)
            assert alert is not None
        elif event.status is ClueStatus.RESOLVED:
            # Seen only once resolved (it fired while we were not listening): recorded
            # in the audit log, but an episode that is over opens no alert.
            pending = finish(conn, changes, router, now)
            return Outcome(None, pending, changes)
        else:
            alert = _alert_for_new_clue(conn, settings, subjects, key, event, now, changes)
        _upsert_clue(conn, alert.id, event, now)
        if known is None:
            timeline.write(
                conn,
                alert.id,
                now,
                "rules",
                "clue_added",
                {"clue_id": event.clue_id, "rule_id": event.rule_id, "title": event.title},
            )
        elif event.status is ClueStatus.RESOLVED:
            timeline.write(
                conn, alert.id, now, "rules", "clue_resolved", {"clue_id": event.clue_id}
            )
        alert = _recompute(conn, alert, now, changes)
        changes.events.append(
            payloads.clue_stream(event, alert, "added" if known is None else "updated")
        )
        pending = finish(conn, changes, router, now)
    return Outcome(alert, pending, changes)


def _alert_for_new_clue(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    key: str,
    event: ClueEvent,
    now: datetime,
    changes: Changes,
) -> AlertRow:
    open_ = fetch_alerts(conn, f"subject_key = %s AND {_OPEN}", (key,), lock=True)
    if open_:
        return open_[0]
    window = timedelta(seconds=settings.reopen_window_s)
    recent = fetch_alerts(
        conn,
        "subject_key = %s AND state = 'resolved' AND closed_at > %s"
        " ORDER BY closed_at DESC LIMIT 1",
        (key, now - window),
        lock=True,
    )
    if recent:
        t = decide(recent[0].state, recent[0].departments, Action.REOPEN, SYSTEM, now)
        return transitions.apply(conn, recent[0], t, changes, {"clue_id": event.clue_id})
    subject = subjects.subject(event.credit_code) if event.credit_code else None
    row = conn.execute(
        "INSERT INTO alerts (subject_key, credit_code, state, severity, departments, grid,"
        " opened_at, updated_at) VALUES (%s, %s, 'open', %s, %s, %s, %s, %s)"
        f" ON CONFLICT (subject_key) WHERE {_OPEN}"
        " DO UPDATE SET updated_at = alerts.updated_at RETURNING id, xmax = 0",
        (
            key,
            event.credit_code,
            event.severity.value,
            [event.department],
            subject.grid if subject is not None else "",
            now,
            now,
        ),
    ).fetchone()
    assert row is not None
    alert = fetch_alert(conn, int(row[0]), lock=True)
    assert alert is not None
    if row[1]:
        timeline.write(conn, alert.id, now, "rules", "opened", {"clue_id": event.clue_id})
        changes.alert_event(alert, "opened")
        changes.notify.append(NotifyRequest(alert, NotifyEvent.OPENED))
        changes.record("rules", "alert", alert.id, "alert.opened", alert.summary())
    return alert


def _upsert_clue(conn: psycopg.Connection[Any], alert_id: int, e: ClueEvent, now: datetime) -> None:
    conn.execute(
        "INSERT INTO alert_clues (clue_id, alert_id, fingerprint, rule_id, rule_version,"
        " title, department, severity, status, device_ids, evidence_ids, started_at,"
        " ended_at, summary, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (clue_id) DO UPDATE SET severity = EXCLUDED.severity,"
        " status = EXCLUDED.status, device_ids = EXCLUDED.device_ids,"
        " evidence_ids = EXCLUDED.evidence_ids, ended_at = EXCLUDED.ended_at,"
        " summary = EXCLUDED.summary, title = EXCLUDED.title,"
        " updated_at = EXCLUDED.updated_at",
        (
            e.clue_id,
            alert_id,
            e.fingerprint,
            e.rule_id,
            e.rule_version,
            e.title,
            e.department,
            e.severity.value,
            e.status.value,
            list(e.device_ids),
            list(e.evidence_ids),
            e.started_at,
            e.ended_at,
            e.summary,
            now,
        ),
    )


def _recompute(
    conn: psycopg.Connection[Any], alert: AlertRow, now: datetime, changes: Changes
) -> AlertRow:
    """Severity is the highest of the clues, departments their union (never narrowed)."""
    rows = conn.execute(
        "SELECT department, severity, status, coalesce(ended_at, updated_at)"
        " FROM alert_clues WHERE alert_id = %s",
        (alert.id,),
    ).fetchall()
    severity = max((Severity(r[1]) for r in rows), key=lambda s: s.rank)
    departments = sorted(set(alert.departments) | {r[0] for r in rows})
    all_resolved = all(r[2] == ClueStatus.RESOLVED.value for r in rows)
    resolved_at = (alert.clues_resolved_at or now) if all_resolved else None
    escalated = severity.rank > alert.severity.rank
    conn.execute(
        "UPDATE alerts SET severity = %s, departments = %s, clues_resolved_at = %s,"
        " updated_at = %s WHERE id = %s",
        (severity.value, departments, resolved_at, now, alert.id),
    )
    new = dataclasses.replace(
        alert,
        severity=severity,
        departments=departments,
        clues_resolved_at=resolved_at,
        updated_at=now,
    )
    if escalated:
        timeline.write(
            conn,
            alert.id,
            now,
            "rules",
            "escalated",
            {"from": alert.severity.value, "to": severity.value},
        )
        # A closed alert records the change but tells no one: it was judged already.
        if new.state.is_open:
            changes.notify.append(NotifyRequest(new, NotifyEvent.ESCALATED))
        changes.record("rules", "alert", alert.id, "alert.escalated", {"severity": severity.value})
    if new.state.is_open:
        _join_open_task(conn, new, now, changes)
    # The board sounds its alarm on "escalated" as on "opened": say which this is.
    changes.alert_event(new, "escalated" if escalated else "updated")
    return new


def _join_open_task(
    conn: psycopg.Connection[Any], alert: AlertRow, now: datetime, changes: Changes
) -> None:
    """A dispatched alert's joint task takes in departments its new clues bring."""
    for task in fetch_tasks(
        conn,
        "kind = 'joint' AND status <> 'done'"
        " AND id IN (SELECT task_id FROM task_alerts WHERE alert_id = %s)",
        (alert.id,),
        lock=True,
    ):
        departments = sorted(set(task.departments) | set(alert.departments))
        severity = alert.severity if alert.severity.rank > task.severity.rank else task.severity
        if departments != sorted(task.departments) or severity != task.severity:
            conn.execute(
                "UPDATE tasks SET departments = %s, severity = %s, updated_at = %s WHERE id = %s",
                (departments, severity.value, now, task.id),
            )
            task.departments, task.severity = departments, severity
            changes.task_event(task, "updated")
            changes.record("rules", "task", task.id, "task.updated", task.summary())
