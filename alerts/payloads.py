"""How a clue is written into the audit chain and onto the live stream."""

from __future__ import annotations

from typing import Any

from alerts.records import AlertRow, StreamEvent, StreamKind
from rules.models import ClueEvent


def clue_audit(e: ClueEvent) -> dict[str, Any]:
    """The clue as the audit chain records it."""
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


def clue_stream(e: ClueEvent, alert: AlertRow, action: str) -> StreamEvent:
    """The clue as the board receives it, addressed to the alert's departments."""
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
