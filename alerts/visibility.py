"""Which departments an alert shares evidence with: those taking part in the alert."""

from __future__ import annotations

from typing import Any

import psycopg


def evidence_shared_with(conn: psycopg.Connection[Any], evidence_id: str, department: str) -> bool:
    """True when a clue of an alert the department takes part in carries this evidence."""
    row = conn.execute(
        "SELECT 1 FROM alert_clues c JOIN alerts a ON a.id = c.alert_id"
        " WHERE c.evidence_ids @> ARRAY[%s]::text[] AND %s = ANY(a.departments) LIMIT 1",
        (evidence_id, department),
    ).fetchone()
    return row is not None
