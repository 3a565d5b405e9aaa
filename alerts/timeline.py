"""An alert's timeline: one row per thing that happened to it, shown on its page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.audit import canonical_json


def write(
    conn: psycopg.Connection[Any],
    alert_id: int,
    at: datetime,
    actor: str,
    kind: str,
    detail: dict[str, Any],
) -> None:
    """Append an entry inside the caller's transaction."""
    conn.execute(
        "INSERT INTO alert_timeline (alert_id, at, actor, kind, detail)"
        " VALUES (%s, %s, %s, %s, %s)",
        (alert_id, at, actor, kind, Jsonb(detail, dumps=canonical_json)),
    )
