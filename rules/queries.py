"""Read-only queries of stored clues for the workbench: the readings that made each clue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True, slots=True)
class TriggerReading:
    """A value that made a clue: a reading, or a window aggregate ending at `until`."""

    time: datetime
    device_id: str
    metric: str
    value: float | None
    until: datetime | None
    evidence_id: str | None


def triggers(
    conn: psycopg.Connection[Any], clue_ids: Sequence[int]
) -> dict[int, list[TriggerReading]]:
    """clue id -> its trigger readings, as the engine stored them."""
    rows = conn.execute(
        "SELECT id, trigger FROM clues WHERE id = ANY(%s)", (list(clue_ids),)
    ).fetchall()
    out: dict[int, list[TriggerReading]] = {}
    for clue_id, items in rows:
        out[clue_id] = [
            TriggerReading(
                time=datetime.fromisoformat(it["time"]),
                device_id=it["device_id"],
                metric=it["metric"],
                value=it.get("value"),
                until=datetime.fromisoformat(it["until"]) if it.get("until") else None,
                evidence_id=it.get("evidence_id"),
            )
            for it in items
        ]
    return out


@dataclass(frozen=True, slots=True)
class ClueLine:
    id: int
    rule_id: str
    title: str
    severity: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    summary: str


def subject_clues(
    conn: psycopg.Connection[Any], credit_code: str, departments: Sequence[str], limit: int = 100
) -> list[ClueLine]:
    """The subject's clues raised by rules of the given departments, newest first."""
    rows = conn.execute(
        "SELECT id, rule_id, title, severity, status, started_at, ended_at, summary FROM clues"
        " WHERE credit_code = %s AND department = ANY(%s) AND NOT withdrawn"
        " ORDER BY started_at DESC LIMIT %s",
        (credit_code, list(departments), limit),
    ).fetchall()
    return [ClueLine(*r) for r in rows]
