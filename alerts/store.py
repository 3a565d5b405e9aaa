"""Every write of the alerts package behind one object; each public method is one transaction.

The work lives in modules with one job each: grouping (clues join alerts), transitions,
dispatching, tasks, sweeps, escalation and subject_audit (the service calls draws and
silences itself). The store holds
what they share (settings, the subjects port, the notice router, the clock) and reads the
clock once per transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alerts import (
    dispatching,
    escalation,
    grouping,
    subject_audit,
    sweeps,
    tasks,
    timeline,
    transitions,
)
from alerts.dispatch import DispatchPlan
from alerts.findings import PhotoUpload
from alerts.lifecycle import Action, DismissReason
from alerts.outcome import Outcome
from alerts.records import TaskStatus
from alerts.routing import Router
from alerts.settings import AlertsSettings
from alerts.subjects_port import SubjectChange, SubjectLookup
from core.clock import Clock
from core.principal import Principal
from rules.models import ClueEvent

__all__ = ["AlertStore", "Outcome"]


@dataclass(eq=False)
class AlertStore:
    settings: AlertsSettings
    subjects: SubjectLookup
    clock: Clock
    router: Router = field(init=False)

    def __post_init__(self) -> None:
        self.router = Router(self.settings, self.subjects)

    # -- clues and transitions ------------------------------------------------------------

    def apply_clue(
        self, conn: psycopg.Connection[Any], event: ClueEvent, advance: bool = False
    ) -> Outcome:
        return grouping.apply_clue(
            conn, self.settings, self.subjects, self.router, self.clock(), event, advance
        )

    def transition(
        self,
        conn: psycopg.Connection[Any],
        alert_id: int,
        action: Action,
        actor: Principal,
        reason: DismissReason | None = None,
        note: str = "",
    ) -> Outcome:
        """Acknowledge, resolve, dismiss or reopen; raises NotFoundError or TransitionRefused."""
        if action is Action.DISPATCH:
            return self.dispatch(conn, alert_id, actor)
        return transitions.transition(
            conn, self.router, self.clock(), alert_id, action, actor, reason, note
        )

    def preview_dispatch(
        self, conn: psycopg.Connection[Any], alert_id: int, actor: Principal
    ) -> DispatchPlan:
        return dispatching.preview(
            conn, self.settings, self.subjects, self.clock(), alert_id, actor
        )

    def dispatch(self, conn: psycopg.Connection[Any], alert_id: int, actor: Principal) -> Outcome:
        return dispatching.dispatch(
            conn, self.settings, self.subjects, self.router, self.clock(), alert_id, actor
        )

    # -- tasks ------------------------------------------------------------------------------

    def update_task(
        self,
        conn: psycopg.Connection[Any],
        task_id: int,
        status: TaskStatus,
        actor: Principal,
        findings: str | None = None,
    ) -> Outcome:
        return tasks.update(conn, self.router, self.clock(), task_id, status, actor, findings)

    def add_finding(
        self,
        conn: psycopg.Connection[Any],
        task_id: int,
        actor: Principal,
        text: str,
        photos: Sequence[PhotoUpload],
    ) -> tuple[Outcome, int]:
        return tasks.add_finding(conn, self.router, self.clock(), task_id, actor, text, photos)

    # -- sweeps (the service's ticker) ----------------------------------------------------

    def auto_resolve_due(self, conn: psycopg.Connection[Any]) -> list[Outcome]:
        return sweeps.auto_resolve_due(conn, self.settings, self.router, self.clock())

    def repeat_due(self, conn: psycopg.Connection[Any]) -> int:
        return sweeps.repeat_due(conn, self.settings, self.router, self.clock())

    def escalate_due(self, conn: psycopg.Connection[Any]) -> list[escalation.Escalated]:
        """Escalate unacknowledged alerts past their credit grade's time (alerts/escalation)."""
        return escalation.escalate_due(conn, self.settings, self.subjects, self.router,
                                       timeline.write, self.clock())  # fmt: skip

    # -- subject edits --------------------------------------------------------------------

    def record_subject_change(self, conn: psycopg.Connection[Any], change: SubjectChange) -> None:
        """Append a subject edit inside the caller's open transaction."""
        subject_audit.record(conn, change, self.clock())
