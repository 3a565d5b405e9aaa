"""Turns alert changes into outbox rows: routes by department and severity, silences, caps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.audit import canonical_json
from alerts.notify.payload import NoticeAlert, NoticeClue, NoticePayload
from alerts.records import AlertRow, NotifyEvent, NotifyRequest
from alerts.settings import AlertsSettings, NotificationRoute
from alerts.subjects_port import SubjectLookup
from subjects.models import Grade

_CLOSING = frozenset({NotifyEvent.RESOLVED, NotifyEvent.DISMISSED})


@dataclass(frozen=True, slots=True)
class _Clue:
    rule_id: str
    device_ids: tuple[str, ...]
    title: str
    status: str
    department: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class _Silence:
    id: int
    department: str
    matcher: str
    value: str


def wants(
    route: NotificationRoute,
    alert: AlertRow,
    event: NotifyEvent,
    to: frozenset[str] | None = None,
) -> bool:
    """Does this route carry this alert's event at all (before silences and caps)?"""
    if route.department is not None and route.department not in (
        to if to is not None else alert.departments
    ):
        return False
    if alert.severity.rank < route.min_severity.rank:
        return False
    if event in _CLOSING and not route.send_resolved:
        return False
    return not (event is NotifyEvent.REPEAT and not route.send_repeats)


def silenced_by(
    silences: Sequence[_Silence], alert: AlertRow, clues: Sequence[_Clue]
) -> int | None:
    """The silence that mutes this alert, if any.

    A subject or department silence mutes the whole alert. Rule and device silences mute it
    only when they cover every clue, so a silenced rule never hides a different, live problem.
    """
    for s in silences:
        if s.matcher == "subject" and s.value in (alert.credit_code, alert.subject_key):
            return s.id
        if s.matcher == "department" and s.value in alert.departments:
            return s.id
    if not clues:
        return None
    rules = {s.value: s.id for s in silences if s.matcher == "rule"}
    devices = {s.value: s.id for s in silences if s.matcher == "device"}
    covering: int | None = None
    for clue in clues:
        if clue.rule_id in rules:
            hit: int | None = rules[clue.rule_id]
        elif clue.device_ids and all(d in devices for d in clue.device_ids):
            hit = devices[clue.device_ids[0]]
        else:
            return None
        covering = hit if covering is None else covering
    return covering


def hold_s(
    settings: AlertsSettings, grade: Grade | None, alert: AlertRow, event: NotifyEvent
) -> float:
    """How long a notice waits before delivery: its subject's grade's notification hold, for
    alerts up to `notify_hold_max_severity`; an escalation is never held."""
    if grade is None or event is NotifyEvent.OVERDUE:
        return 0.0
    if alert.severity.rank > settings.notify_hold_max_severity.rank:
        return 0.0
    handling = settings.credit_handling.get(grade)
    return handling.notify_hold_s if handling is not None else 0.0


class Router:
    """Writes the outbox rows for alert changes inside the caller's transaction."""

    def __init__(self, settings: AlertsSettings, subjects: SubjectLookup | None = None) -> None:
        self.settings = settings
        self.subjects = subjects

    def _grade(self, alert: AlertRow) -> Grade | None:
        if self.subjects is None or alert.credit_code is None:
            return None
        subject = self.subjects.subject(alert.credit_code)
        return subject.credit_grade if subject is not None else None

    def enqueue(
        self, conn: psycopg.Connection[Any], requests: Sequence[NotifyRequest], now: datetime
    ) -> int:
        """Returns how many rows are pending delivery (suppressed ones are kept, not sent)."""
        pending = 0
        for req in requests:
            pending += self._enqueue_one(conn, req.alert, req.event, now, req.to)
        return pending

    def _enqueue_one(
        self,
        conn: psycopg.Connection[Any],
        alert: AlertRow,
        event: NotifyEvent,
        now: datetime,
        to: frozenset[str] | None = None,
    ) -> int:
        routes = [r for r in self.settings.routes if wants(r, alert, event, to)]
        conn.execute("UPDATE alerts SET last_notified_at = %s WHERE id = %s", (now, alert.id))
        if not routes:
            return 0
        clues = [
            _Clue(r[0], tuple(r[1]), r[2], r[3], r[4], r[5])
            for r in conn.execute(
                "SELECT rule_id, device_ids, title, status, department, started_at FROM alert_clues"
                " WHERE alert_id = %s ORDER BY clue_id",
                (alert.id,),
            )
        ]
        firing = [c for c in clues if c.status == "firing"] or clues
        silences = [
            _Silence(*r)
            for r in conn.execute(
                "SELECT id, department, matcher, value FROM silences WHERE expired_at IS NULL"
                " AND starts_at <= %s AND ends_at > %s",
                (now, now),
            )
        ]
        payload = NoticePayload(
            event=event.value,
            at=now,
            alert=NoticeAlert(**alert.summary()),
            clues=[
                NoticeClue(rule_id=c.rule_id, title=c.title, status=c.status,
                           department=c.department, device_ids=list(c.device_ids),
                           started_at=c.started_at)
                for c in clues
            ],
        ).model_dump()  # fmt: skip
        window_start = now - timedelta(seconds=self.settings.rate_cap_window_s)
        grade = self._grade(alert)
        hold = hold_s(self.settings, grade, alert, event)
        # Held rows exist only for grades with a hold; only then is there anything to batch.
        handling = self.settings.credit_handling.get(grade) if grade is not None else None
        may_batch = handling is not None and handling.notify_hold_s > 0
        pending = 0
        for route in routes:
            route_departments = (
                {route.department} if route.department is not None else set(alert.departments)
            )
            mine = [s for s in silences if s.department in route_departments]
            silence = silenced_by(mine, alert, firing)
            suppressed_by = f"silence:{silence}" if silence is not None else None
            if suppressed_by is None:
                row = conn.execute(
                    "SELECT count(*) FROM outbox WHERE subject_key = %s AND route = %s"
                    " AND created_at > %s AND status <> 'suppressed'",
                    (alert.subject_key, route.name, window_start),
                ).fetchone()
                if row is not None and row[0] >= self.settings.rate_cap_count:
                    suppressed_by = "rate_cap"
            release = now + timedelta(seconds=hold)
            held: list[int] = []
            if suppressed_by is None and may_batch:
                # Batched: notices of this alert and route still held give way to this one,
                # which goes out when the earliest of them would have (the hold never grows;
                # a notice that is not held itself takes them with it now).
                for held_id, held_until in conn.execute(
                    "SELECT id, next_attempt_at FROM outbox WHERE alert_id = %s AND route = %s"
                    " AND status = 'pending' AND attempts = 0 AND next_attempt_at > %s"
                    " FOR UPDATE",
                    (alert.id, route.name, now),
                ).fetchall():
                    held.append(int(held_id))
                    release = min(release, held_until)
            inserted = conn.execute(
                "INSERT INTO outbox (alert_id, subject_key, route, event, payload, status,"
                " suppressed_by, next_attempt_at, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    alert.id,
                    alert.subject_key,
                    route.name,
                    event.value,
                    Jsonb(payload, dumps=canonical_json),
                    "pending" if suppressed_by is None else "suppressed",
                    suppressed_by,
                    release,
                    now,
                ),
            ).fetchone()
            if held and inserted is not None:
                conn.execute(
                    "UPDATE outbox SET status = 'suppressed', suppressed_by = %s"
                    " WHERE id = ANY(%s)",
                    (f"batched:{inserted[0]}", held),
                )
            pending += suppressed_by is None
        return pending
