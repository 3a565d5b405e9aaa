"""How far the active engine has evaluated each device's stream (`engine_progress`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest.models import Reading
from ingest.replay import stream_readings


def newest_by_device(readings: Sequence[Reading]) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for r in readings:
        t = newest.get(r.device_id)
        if t is None or r.time > t:
            newest[r.device_id] = r.time
    return newest


def record(conn: psycopg.Connection[Any], newest: Mapping[str, datetime]) -> None:
    """Inside the clue commit: move each device's mark forward (never back)."""
    if not newest:
        return
    ids = sorted(newest)  # a fixed order: two writers cannot deadlock on these rows
    conn.execute(
        "INSERT INTO engine_progress (device_id, evaluated_to)"
        " SELECT d, t FROM unnest(%s::text[], %s::timestamptz[]) AS u(d, t)"
        " ON CONFLICT (device_id) DO UPDATE"
        " SET evaluated_to = greatest(engine_progress.evaluated_to, excluded.evaluated_to)",
        (ids, [newest[d] for d in ids]),
    )


def load(conn: psycopg.Connection[Any]) -> dict[str, float]:
    """Every device's mark, in epoch seconds."""
    rows = conn.execute("SELECT device_id, evaluated_to FROM engine_progress").fetchall()
    return {device: t.timestamp() for device, t in rows}


def evaluated_readings(
    conn: psycopg.Connection[Any], metrics: Sequence[str], since: datetime
) -> Iterator[Reading]:
    """Stored readings the engine had evaluated (up to each device's mark), in event order:
    the rebuild of a takeover. What is past a mark is still at the broker for us."""
    # Readings are ingest's: read through its replay and keep those up to each mark (what
    # lies past a mark is the few seconds the dead engine had not acknowledged).
    marks = load(conn)
    for reading in stream_readings(conn, metrics, since):
        mark = marks.get(reading.device_id)
        if mark is not None and reading.time.timestamp() <= mark:
            yield reading
