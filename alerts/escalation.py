"""Escalation of unacknowledged alerts by credit grade: how fast, and to whom.

An alert still `open` (nobody acknowledged it) `credit_handling.<grade>.escalate_after_s`
after it opened is escalated once per episode: the grade's `escalate_to` departments join
the alert (they see it in their workbench, as joint participants do), the timeline and the
audit chain record it, and an `overdue` notice goes to those departments' routes. The
subject's grade is read when the sweep runs, so a regraded subject escalates on its new
grade's time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.commit import finish
from alerts.lifecycle import AlertState
from alerts.records import AlertRow, Changes, NotifyEvent, NotifyRequest, fetch_alert
from alerts.routing import Router
from alerts.settings import AlertsSettings, CreditHandling
from alerts.subjects_port import SubjectLookup

# (conn, alert_id, at, actor, kind, detail): AlertStore's timeline writer.
Timeline = Callable[[psycopg.Connection[Any], int, datetime, str, str, dict[str, Any]], None]

SYSTEM = "system"
BATCH = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Escalated:
    alert: AlertRow
    departments: tuple[str, ...]
    pending_notifications: int
    changes: Changes


def _handling_of(
    settings: AlertsSettings, subjects: SubjectLookup, credit_code: str | None
) -> tuple[str, CreditHandling] | None:
    """The subject's grade and its handling, when that grade escalates at all."""
    if credit_code is None:
        return None  # an unbound device: no grade, handled as written
    subject = subjects.subject(credit_code)
    if subject is None:
        return None
    handling = settings.credit_handling.get(subject.credit_grade)
    if handling is None or handling.escalate_after_s is None or not handling.escalate_to:
        return None
    return subject.credit_grade.value, handling


def escalate_due(
    conn: psycopg.Connection[Any],
    settings: AlertsSettings,
    subjects: SubjectLookup,
    router: Router,
    timeline: Timeline,
    now: datetime,
) -> list[Escalated]:
    """Escalate every open, unacknowledged alert past its grade's time; one transaction each."""
    afters = [
        h.escalate_after_s
        for h in settings.credit_handling.values()
        if h.escalate_after_s is not None and h.escalate_to
    ]
    if not afters:
        return []
    # The shortest time of any grade bounds the scan; each alert is then judged on its own.
    oldest = now - timedelta(seconds=min(afters))
    # Judged on the grade first, unlocked: an alert of a grade that never escalates (or not
    # yet) costs no row lock on every tick.
    due: list[int] = []
    for alert_id, credit_code, opened_at in conn.execute(
        "SELECT a.id, a.credit_code, a.opened_at FROM alerts a WHERE a.state = 'open'"
        " AND a.credit_code IS NOT NULL AND a.opened_at <= %s AND NOT EXISTS (SELECT 1"
        " FROM alert_escalations e WHERE e.alert_id = a.id AND e.reopen_count = a.reopen_count)"
        " ORDER BY a.id",
        (oldest,),
    ).fetchall():
        found = _handling_of(settings, subjects, credit_code)
        after = found[1].escalate_after_s if found is not None else None
        if after is not None and now - opened_at >= timedelta(seconds=after):
            due.append(int(alert_id))
        if len(due) >= BATCH:
            break
    done: list[Escalated] = []
    for alert_id in due:
        with conn.transaction():
            alert = fetch_alert(conn, alert_id, lock=True)
            if alert is None or alert.state is not AlertState.OPEN:
                continue  # acknowledged or closed since the scan
            found = _handling_of(settings, subjects, alert.credit_code)
            if found is None:
                continue
            grade, handling = found
            assert handling.escalate_after_s is not None
            # A reopened alert's episode starts at its reopening, not its first opening.
            started = alert.opened_at
            if alert.reopen_count:
                row = conn.execute(
                    "SELECT max(at) FROM alert_timeline WHERE alert_id = %s AND kind = 'reopen'",
                    (alert.id,),
                ).fetchone()
                started = row[0] if row is not None and row[0] is not None else started
            if now - started < timedelta(seconds=handling.escalate_after_s):
                continue
            inserted = conn.execute(
                "INSERT INTO alert_escalations (alert_id, reopen_count, at, credit_grade,"
                " after_s, departments) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING alert_id",
                (alert.id, alert.reopen_count, now, grade, handling.escalate_after_s,
                 sorted(handling.escalate_to)),
            ).fetchone()  # fmt: skip
            if inserted is None:
                continue  # another instance escalated it first
            done.append(_escalate(conn, router, timeline, alert, grade, handling, now))
    return done


def _escalate(
    conn: psycopg.Connection[Any],
    router: Router,
    timeline: Timeline,
    alert: AlertRow,
    grade: str,
    handling: CreditHandling,
    now: datetime,
) -> Escalated:
    changes = Changes()
    to = tuple(sorted(handling.escalate_to))
    departments = sorted(set(alert.departments) | set(to))
    conn.execute(
        "UPDATE alerts SET departments = %s, updated_at = %s WHERE id = %s",
        (departments, now, alert.id),
    )
    new = dataclasses.replace(alert, departments=departments, updated_at=now)
    detail = {"credit_grade": grade, "after_s": handling.escalate_after_s, "to": list(to)}
    timeline(conn, alert.id, now, SYSTEM, "overdue_escalated", detail)
    changes.alert_event(new, "overdue_escalated")
    changes.notify.append(NotifyRequest(new, NotifyEvent.OVERDUE, frozenset(to)))
    changes.record(SYSTEM, "alert", alert.id, "alert.overdue_escalated", detail)
    pending = finish(conn, changes, router, now)
    return Escalated(new, to, pending, changes)
