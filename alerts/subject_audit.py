"""Subject edits enter the audit chain (subjects calls this through its hook)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from alerts import audit
from alerts.subjects_port import SubjectChange


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
