"""Subject edits enter the audit chain (subjects calls this through its hook)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from alerts import audit
from alerts.subjects_port import SubjectChange
from core.clock import Clock, utc_now


def record(conn: psycopg.Connection[Any], change: SubjectChange, now: datetime) -> None:
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
    entry = audit.AuditRecord(
        change.actor, "subject", change.credit_code, str(change.kind), payload
    )
    audit.append(conn, [entry], now)


@dataclass(frozen=True, slots=True)
class SubjectAuditHook:
    """The subjects library's on_change: audits an edit inside the editing transaction, so
    the edit and its record commit together or not at all. Built before the library, and
    handed to it at construction: no edit is ever made without it."""

    clock: Clock = utc_now

    def __call__(self, change: SubjectChange, conn: psycopg.Connection[Any]) -> None:
        record(conn, change, self.clock())
