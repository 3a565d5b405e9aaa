"""Stored readings read back in event order, for the rules engine's start and dry runs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest.models import Reading

__all__ = ["last_seen", "stream_readings"]


def stream_readings(
    conn: psycopg.Connection[Any],
    metrics: Sequence[str] | None,
    since: datetime,
    until: datetime | None = None,
    device_ids: Sequence[str] | None = None,
) -> Iterator[Reading]:
    """Stored readings in event order (all metrics when `metrics` is None)."""
    sql = "SELECT time, device_id, metric, value, flag FROM readings WHERE time > %s"
    params: list[Any] = [since]
    if metrics is not None:
        sql += " AND metric = ANY(%s)"
        params.append(list(metrics))
    if until is not None:
        sql += " AND time <= %s"
        params.append(until)
    if device_ids is not None:
        sql += " AND device_id = ANY(%s)"
        params.append(list(device_ids))
    sql += " ORDER BY time, device_id, metric"
    with conn.transaction(), conn.cursor(name="rules_replay") as cur:
        cur.itersize = 5000
        cur.execute(sql, params)
        for t, device_id, metric, value, flag in cur:
            yield Reading(t, device_id, metric, value, flag)


def last_seen(
    conn: psycopg.Connection[Any], metrics: Sequence[str], since: datetime
) -> dict[tuple[str, str | None], float]:
    """When each device (and each device's metric) last sent data, for absence rules."""
    found: dict[tuple[str, str | None], float] = {}
    for device_id, seen in conn.execute("SELECT device_id, last_seen FROM devices"):
        found[(device_id, None)] = seen.timestamp()
    if metrics:
        for device_id, metric, seen in conn.execute(
            "SELECT device_id, metric, max(time) FROM readings"
            " WHERE time > %s AND metric = ANY(%s) GROUP BY device_id, metric",
            (since, list(metrics)),
        ):
            found[(device_id, metric)] = seen.timestamp()
    return found
