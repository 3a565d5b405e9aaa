"""The live event feed: rows in alert_events (ids are SSE ids) and a wake-up on commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.audit import canonical_json
from alerts.records import StreamEvent

CHANNEL = "offsite_alert_events"


def write(conn: psycopg.Connection[Any], events: Sequence[StreamEvent]) -> None:
    """Insert events inside the caller's transaction; listeners wake when it commits."""
    if not events:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alert_events (kind, entity_id, departments, payload)"
            " VALUES (%s, %s, %s, %s)",
            [
                (
                    e.kind.value,
                    e.entity_id,
                    sorted(set(e.departments)),
                    Jsonb(e.payload, dumps=canonical_json),
                )
                for e in events
            ],
        )
    conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))


@dataclass(frozen=True, slots=True)
class FeedEvent:
    id: int
    at: datetime
    kind: str
    entity_id: int
    payload: dict[str, Any]


def read(
    conn: psycopg.Connection[Any], department: str, after_id: int, limit: int = 500
) -> list[FeedEvent]:
    """Events after `after_id` that concern `department`, oldest first."""
    rows = conn.execute(
        "SELECT id, at, kind, entity_id, payload FROM alert_events"
        " WHERE id > %s AND %s = ANY(departments) ORDER BY id LIMIT %s",
        (after_id, department, limit),
    ).fetchall()
    return [FeedEvent(*r) for r in rows]


def last_id(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_events").fetchone()
    return int(row[0]) if row else 0
