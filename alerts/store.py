"""Alert transactions: clues join their subject's alert, transitions, sweeps, task updates."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts import audit, draws, escalation, handoff, silences
from alerts.audit import canonical_json
from alerts.commit import finish
from alerts.dispatch import (
    DispatchPlan,
    check_task_transition,
    create_single_task,
    open_joint_task,
    plan_dispatch,
)
from alerts.errors import NotFoundError, Refusal
from alerts.findings import PhotoUpload, record_finding
from alerts.lifecycle import (
    SYSTEM,
    Action,
    Actor,
    AlertState,
    DismissReason,
    Transition,
    TransitionRefused,
    decide,
)
from alerts.records import (
    AlertRow,
    Changes,
    NotifyEvent,
    NotifyRequest,
    StreamEvent,
    StreamKind,
    TaskKind,
    TaskRow,
    TaskStatus,
    fetch_alert,
    fetch_alerts,
    fetch_tasks,
)
from alerts.routing import Router
from alerts.settings import AlertsSettings
from alerts.silences import Matcher, SilenceRow
from alerts.subjects_port import SubjectChange, SubjectLookup
from rules.models import ClueEvent, ClueStatus, Severity

log = logging.getLogger(__name__)

_OPEN = "state IN ('open', 'acknowledged', 'dispatched')"
_NOTIFY_ON = {
    Action.RESOLVE: NotifyEvent.RESOLVED,
    Action.AUTO_RESOLVE: NotifyEvent.RESOLVED,
    Action.DISMISS: NotifyEvent.DISMISSED,
    Action.REOPEN: NotifyEvent.REOPENED,
}


def subject_key_of(event: ClueEvent) -> str:
    """Alerts group by subject; a clue on an unbound device groups by that device."""
    if event.credit_code:
        return event.credit_code
    return "device:" + (event.device_ids[0] if event.device_ids else event.fingerprint)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What a transaction did, for the caller's metrics and wake-ups (after the commit)."""

    alert: AlertRow | None
    pending_notifications: int
    changes: Changes
    task: TaskRow | None = None


class AlertStore:
    """Every write of the alerts package; each public method is one transaction."""

    def __init__(
        self,
        settings: AlertsSettings,
        subjects: SubjectLookup,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.subjects = subjects
        self.router = Router(settings, subjects)
        self.clock = clock

    # -- the end of every transaction -----------------------------------------------------

    def _finish(self, conn: psycopg.Connection[Any], changes: Changes, now: datetime) -> int:
        return finish(conn, changes, self.router, now)

    def _timeline(
        self,
        conn: psycopg.Connection[Any],
        alert_id: int,
        at: datetime,
        actor: str,
        kind: str,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO alert_timeline (alert_id, at, actor, kind, detail)"
            " VALUES (%s, %s, %s, %s, %s)",
            (alert_id, at, actor, kind, Jsonb(detail, dumps=canonical_json)),
        )

    # -- clues ----------------------------------------------------------------------------

    def apply_clue(
        self, conn: psycopg.Connection[Any], event: ClueEvent, advance: bool = False
    ) -> Outcome:
        """Record a clue transition on its subject's alert, opening one when there is none.

        With `advance`, the ledger watermark moves to the event's change number in the same
        transaction; a change already past the watermark is not applied twice.
        """
        now = self.clock()
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
                "rules", "clue", event.clue_id, f"clue.{event.status.value}", _clue_payload(event)
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
                pending = self._finish(conn, changes, now)
                return Outcome(None, pending, changes)
            else:
                alert = self._alert_for_new_clue(conn, key, event, now, changes)
            self._upsert_clue(conn, alert.id, event, now)
            if known is None:
                self._timeline(
                    conn,
                    alert.id,
                    now,
                    "rules",
                    "clue_added",
                    {"clue_id": event.clue_id, "rule_id": event.rule_id, "title": event.title},
                )
            elif event.status is ClueStatus.RESOLVED:
                self._timeline(
                    conn, alert.id, now, "rules", "clue_resolved", {"clue_id": event.clue_id}
                )
            alert = self._recompute(conn, alert, now, changes)
            changes.events.append(
                events_clue(event, alert, "added" if known is None else "updated")
            )
            pending = self._finish(conn, changes, now)
        return Outcome(alert, pending, changes)

    def _alert_for_new_clue(
        self,
        conn: psycopg.Connection[Any],
        key: str,
        event: ClueEvent,
        now: datetime,
        changes: Changes,
    ) -> AlertRow:
        open_ = fetch_alerts(conn, f"subject_key = %s AND {_OPEN}", (key,), lock=True)
        if open_:
            return open_[0]
        window = timedelta(seconds=self.settings.reopen_window_s)
        recent = fetch_alerts(
            conn,
            "subject_key = %s AND state = 'resolved' AND closed_at > %s"
            " ORDER BY closed_at DESC LIMIT 1",
            (key, now - window),
            lock=True,
        )
        if recent:
            t = decide(recent[0].state, recent[0].departments, Action.REOPEN, SYSTEM, now)
            return self._apply(conn, recent[0], t, changes, {"clue_id": event.clue_id})
        subject = self.subjects.subject(event.credit_code) if event.credit_code else None
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
            self._timeline(conn, alert.id, now, "rules", "opened", {"clue_id": event.clue_id})
            changes.alert_event(alert, "opened")
            changes.notify.append(NotifyRequest(alert, NotifyEvent.OPENED))
            changes.record("rules", "alert", alert.id, "alert.opened", alert.summary())
        return alert

    def _upsert_clue(
        self, conn: psycopg.Connection[Any], alert_id: int, e: ClueEvent, now: datetime
    ) -> None:
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
        self, conn: psycopg.Connection[Any], alert: AlertRow, now: datetime, changes: Changes
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
            self._timeline(
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
            changes.record(
                "rules", "alert", alert.id, "alert.escalated", {"severity": severity.value}
            )
        if new.state.is_open:
            self._join_open_task(conn, new, now, changes)
        # The board sounds its alarm on "escalated" as on "opened": say which this is.
        changes.alert_event(new, "escalated" if escalated else "updated")
        return new

    def _join_open_task(
        self, conn: psycopg.Connection[Any], alert: AlertRow, now: datetime, changes: Changes
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
                    "UPDATE tasks SET departments = %s, severity = %s, updated_at = %s"
                    " WHERE id = %s",
                    (departments, severity.value, now, task.id),
                )
                task.departments, task.severity = departments, severity
                changes.task_event(task, "updated")
                changes.record("rules", "task", task.id, "task.updated", task.summary())

    # -- transitions ----------------------------------------------------------------------

    def _apply(
        self,
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
        self._timeline(conn, alert.id, t.at, t.actor.name, t.action.value, info)
        changes.alert_event(new, t.action.value)
        changes.record(t.actor.name, "alert", alert.id, f"alert.{t.action.value}", info)
        notice = _NOTIFY_ON.get(t.action)
        if notice is not None:
            changes.notify.append(NotifyRequest(new, notice))
        return new

    def _visible(self, conn: psycopg.Connection[Any], alert_id: int, actor: Actor) -> AlertRow:
        alert = fetch_alert(conn, alert_id, lock=True)
        if alert is None or (not actor.is_system and actor.department not in alert.departments):
            raise NotFoundError(f"alert {alert_id} not found")
        return alert

    def transition(
        self,
        conn: psycopg.Connection[Any],
        alert_id: int,
        action: Action,
        actor: Actor,
        reason: DismissReason | None = None,
        note: str = "",
    ) -> Outcome:
        """Acknowledge, resolve, dismiss or reopen; raises NotFoundError or TransitionRefused."""
        if action is Action.DISPATCH:
            return self.dispatch(conn, alert_id, actor)
        now = self.clock()
        changes = Changes()
        with conn.transaction():
            alert = self._visible(conn, alert_id, actor)
            t = decide(alert.state, alert.departments, action, actor, now, reason, note)
            if action is Action.RESOLVE and alert.state is AlertState.DISPATCHED:
                self._close_tasks_of(conn, alert, actor, note, now, changes)
            new = self._apply(conn, alert, t, changes)
            pending = self._finish(conn, changes, now)
        return Outcome(new, pending, changes)

    def _close_tasks_of(
        self,
        conn: psycopg.Connection[Any],
        alert: AlertRow,
        actor: Actor,
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

    def add_finding(
        self,
        conn: psycopg.Connection[Any],
        task_id: int,
        actor: Actor,
        text: str,
        photos: Sequence[PhotoUpload],
    ) -> tuple[Outcome, int]:
        """A participating department's finding on an open task (text and photos)."""
        now = self.clock()
        changes = Changes()
        with conn.transaction():
            task, finding_id, hashes = record_finding(
                conn, task_id, actor, text, photos, now, changes
            )
            for (alert_id,) in conn.execute(
                "SELECT alert_id FROM task_alerts WHERE task_id = %s ORDER BY alert_id",
                (task.id,),
            ).fetchall():
                self._timeline(
                    conn, alert_id, now, actor.name, "finding",
                    {"task_id": task.id, "department": actor.department, "text": text.strip(),
                     "photos": hashes},
                )  # fmt: skip
            pending = self._finish(conn, changes, now)
        return Outcome(None, pending, changes, task), finding_id

    def _plan(self, conn: psycopg.Connection[Any], alert: AlertRow, now: datetime) -> DispatchPlan:
        rows = conn.execute(
            "SELECT department, severity FROM alert_clues WHERE alert_id = %s", (alert.id,)
        ).fetchall()
        by_department: dict[str, Severity] = {}
        for department, severity in rows:
            s, prev = Severity(severity), by_department.get(department)
            if prev is None or s.rank > prev.rank:
                by_department[department] = s
        subject = self.subjects.subject(alert.credit_code) if alert.credit_code else None
        return plan_dispatch(
            by_department.keys(), by_department, subject, alert.severity, self.settings, now
        )

    def preview_dispatch(
        self, conn: psycopg.Connection[Any], alert_id: int, actor: Actor
    ) -> DispatchPlan:
        """The plan a dispatch would follow now, writing nothing (the page's preview)."""
        now = self.clock()
        with conn.transaction():
            alert = self._visible(conn, alert_id, actor)
            decide(alert.state, alert.departments, Action.DISPATCH, actor, now)
            return self._plan(conn, alert, now)

    def dispatch(self, conn: psycopg.Connection[Any], alert_id: int, actor: Actor) -> Outcome:
        """Create (or join) the alert's task as the dispatch policy says."""
        now = self.clock()
        changes = Changes()
        with conn.transaction():
            alert = self._visible(conn, alert_id, actor)
            t = decide(alert.state, alert.departments, Action.DISPATCH, actor, now)
            plan = self._plan(conn, alert, now)
            if plan.kind is TaskKind.JOINT:
                task, _ = open_joint_task(
                    conn,
                    alert.subject_key,
                    alert.credit_code,
                    plan,
                    alert.severity,
                    "alert",
                    actor,
                    now,
                    changes,
                )
            else:
                task = create_single_task(
                    conn,
                    alert.subject_key,
                    alert.credit_code,
                    plan,
                    alert.severity,
                    actor,
                    now,
                    changes,
                )
            conn.execute(
                "INSERT INTO task_alerts (task_id, alert_id, attached_at) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (task.id, alert.id, now),
            )
            # Participants of a joint inspection see the alert from now on.
            departments = sorted(set(alert.departments) | set(task.departments))
            conn.execute(
                "UPDATE alerts SET departments = %s WHERE id = %s", (departments, alert.id)
            )
            alert.departments = departments
            new = self._apply(
                conn,
                alert,
                t,
                changes,
                {"task_id": task.id, "task_kind": task.kind.value, "lead": task.lead_department,
                 "plan": plan.reason},
            )  # fmt: skip
            pending = self._finish(conn, changes, now)
        return Outcome(new, pending, changes, task)

    # -- tasks ------------------------------------------------------------------------------

    def update_task(
        self,
        conn: psycopg.Connection[Any],
        task_id: int,
        status: TaskStatus,
        actor: Actor,
        findings: str | None = None,
    ) -> Outcome:
        """Move a task on; done closes its dispatched alerts as resolved."""
        now = self.clock()
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
                    self._apply(conn, alert, t, changes, {"task_id": task.id, "by": actor.name})
            pending = self._finish(conn, changes, now)
        return Outcome(None, pending, changes, task)

    # -- sweeps (the service's ticker) ----------------------------------------------------

    def auto_resolve_due(self, conn: psycopg.Connection[Any]) -> list[Outcome]:
        """Resolve open or acknowledged alerts whose clues are all resolved and quiet."""
        now = self.clock()
        cutoff = now - timedelta(seconds=self.settings.quiet_period_s)
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM alerts WHERE state IN ('open', 'acknowledged')"
                " AND clues_resolved_at IS NOT NULL AND clues_resolved_at <= %s ORDER BY id",
                (cutoff,),
            )
        ]
        outcomes = []
        for alert_id in ids:
            changes = Changes()
            with conn.transaction():
                alert = fetch_alert(conn, alert_id, lock=True)
                # Re-checked under the lock: a clue may have fired since the scan.
                if (
                    alert is None
                    or alert.state not in (AlertState.OPEN, AlertState.ACKNOWLEDGED)
                    or alert.clues_resolved_at is None
                    or alert.clues_resolved_at > cutoff
                ):
                    continue
                t = decide(alert.state, alert.departments, Action.AUTO_RESOLVE, SYSTEM, now,
                           note="all clues resolved and quiet")  # fmt: skip
                new = self._apply(conn, alert, t, changes)
                pending = self._finish(conn, changes, now)
            outcomes.append(Outcome(new, pending, changes))
        return outcomes

    def repeat_due(self, conn: psycopg.Connection[Any]) -> int:
        """Re-notify open, unacknowledged alerts not notified for a repeat interval."""
        if self.settings.repeat_interval_s <= 0:
            return 0
        now = self.clock()
        cutoff = now - timedelta(seconds=self.settings.repeat_interval_s)
        pending = 0
        with conn.transaction():
            alerts = fetch_alerts(
                conn,
                "state = 'open' AND coalesce(last_notified_at, opened_at) <= %s"
                " ORDER BY id LIMIT 500",
                (cutoff,),
                lock=True,
            )
            if alerts:
                pending = self.router.enqueue(
                    conn, [NotifyRequest(a, NotifyEvent.REPEAT) for a in alerts], now
                )
        return pending

    def escalate_due(self, conn: psycopg.Connection[Any]) -> list[escalation.Escalated]:
        """Escalate unacknowledged alerts past their credit grade's time (alerts/escalation)."""
        return escalation.escalate_due(conn, self.settings, self.subjects, self.router,
                                       self._timeline, self.clock())  # fmt: skip

    # -- double-random draws and silences (their modules do the work) --------------------

    def submit_draw(
        self,
        conn: psycopg.Connection[Any],
        actor: Actor,
        period: str,
        codes: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> tuple[int, list[str]]:
        return draws.submit(conn, self.subjects, self.settings, actor, period, codes, seed,
                            self.clock())  # fmt: skip

    def merge_draws(
        self, conn: psycopg.Connection[Any], actor: Actor, period: str
    ) -> tuple[list[TaskRow], int]:
        return draws.merge(conn, self.subjects, self.settings, self.router, actor, period,
                           self.clock())  # fmt: skip

    def create_silence(
        self,
        conn: psycopg.Connection[Any],
        actor: Actor,
        matcher: Matcher,
        value: str,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> SilenceRow:
        return silences.create(conn, actor, matcher, value, starts_at, ends_at, reason,
                               self.clock())  # fmt: skip

    def change_silence(
        self,
        conn: psycopg.Connection[Any],
        actor: Actor,
        silence_id: int,
        ends_at: datetime | None = None,
        reason: str | None = None,
        expire: bool = False,
    ) -> SilenceRow:
        return silences.change(conn, actor, silence_id, self.clock(), ends_at, reason, expire)

    # -- subject edits --------------------------------------------------------------------

    def record_subject_change(self, conn: psycopg.Connection[Any], change: SubjectChange) -> None:
        """Append a subject edit inside the caller's open transaction."""
        payload = {
            "credit_code": change.credit_code,
            "department": change.department,
            "before": dict(change.before) if change.before is not None else None,
            "after": dict(change.after) if change.after is not None else None,
            "device_id": change.device_id,
            "linked_department": change.linked_department,
            "source": change.source,
            "changed_at": change.at,
        }
        record = audit.AuditRecord(
            change.actor, "subject", change.credit_code, str(change.kind), payload
        )
        audit.append(conn, [record], self.clock())


def _clue_payload(e: ClueEvent) -> dict[str, Any]:
    return {
        "fingerprint": e.fingerprint,
        "rule_id": e.rule_id,
        "rule_version": e.rule_version,
        "department": e.department,
        "severity": e.severity.value,
        "status": e.status.value,
        "credit_code": e.credit_code,
        "device_ids": list(e.device_ids),
        "evidence_ids": list(e.evidence_ids),
        "started_at": e.started_at,
        "ended_at": e.ended_at,
        "changed_at": e.changed_at,
        "summary": e.summary,
    }


def events_clue(e: ClueEvent, alert: AlertRow, action: str) -> StreamEvent:
    payload = {
        "clue_id": e.clue_id,
        "alert_id": alert.id,
        "rule_id": e.rule_id,
        "title": e.title,
        "department": e.department,
        "severity": e.severity.value,
        "status": e.status.value,
        "subject_key": alert.subject_key,
        "action": action,
    }
    return StreamEvent(StreamKind.CLUE, e.clue_id, tuple(alert.departments), payload)
