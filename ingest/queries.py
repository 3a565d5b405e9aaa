"""Read-only queries of stored readings and devices for the workbench's charts and lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class Point:
    time: datetime
    value: float


def series(
    conn: psycopg.Connection[Any],
    device_id: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int = 5000,
) -> list[Point]:
    """Readings of one device and metric in [since, until], oldest first (at most `limit`)."""
    with conn.cursor(row_factory=class_row(Point)) as cur:
        return cur.execute(
            "SELECT time, value FROM readings WHERE device_id = %s AND metric = %s"
            " AND time >= %s AND time <= %s ORDER BY time LIMIT %s",
            (device_id, metric, since, until, limit),
        ).fetchall()


def hourly_means(
    conn: psycopg.Connection[Any],
    device_id: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int = 2000,
) -> list[Point]:
    """Hourly means of one device and metric in [since, until] from `readings_1h` (the
    continuous aggregate on TimescaleDB, a view on plain PostgreSQL), oldest first."""
    with conn.cursor(row_factory=class_row(Point)) as cur:
        return cur.execute(
            "SELECT bucket AS time, avg AS value FROM readings_1h WHERE device_id = %s"
            " AND metric = %s AND bucket >= %s AND bucket <= %s ORDER BY bucket LIMIT %s",
            (device_id, metric, since, until, limit),
        ).fetchall()


def count_between(
    conn: psycopg.Connection[Any], device_id: str, metric: str, since: datetime, until: datetime
) -> int:
    row = conn.execute(
        "SELECT count(*) FROM readings WHERE device_id = %s AND metric = %s"
        " AND time >= %s AND time < %s",
        (device_id, metric, since, until),
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class DeviceState:
    device_id: str
    kind: str
    first_seen: datetime
    last_seen: datetime
    online: bool | None
    status_changed_at: datetime | None


def devices(conn: psycopg.Connection[Any], device_ids: Sequence[str]) -> list[DeviceState]:
    """The devices named (those that ever sent anything), by id."""
    with conn.cursor(row_factory=class_row(DeviceState)) as cur:
        return cur.execute(
            "SELECT device_id, kind, first_seen, last_seen, online, status_changed_at"
            " FROM devices WHERE device_id = ANY(%s) ORDER BY device_id",
            (list(device_ids),),
        ).fetchall()


def unbound_devices(conn: psycopg.Connection[Any], limit: int = 500) -> list[DeviceState]:
    """Devices that have sent data but are bound to no subject (the platform admin's inbox),
    most recently heard first."""
    with conn.cursor(row_factory=class_row(DeviceState)) as cur:
        return cur.execute(
            "SELECT device_id, kind, first_seen, last_seen, online, status_changed_at"
            " FROM devices d WHERE NOT EXISTS"
            " (SELECT 1 FROM device_bindings b WHERE b.device_id = d.device_id)"
            " ORDER BY last_seen DESC LIMIT %s",
            (limit,),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class LastReading:
    device_id: str
    metric: str
    time: datetime
    value: float


def last_readings(conn: psycopg.Connection[Any], device_ids: Sequence[str]) -> list[LastReading]:
    """The newest reading of each metric of each device (looked back over the last day)."""
    with conn.cursor(row_factory=class_row(LastReading)) as cur:
        return cur.execute(
            "SELECT DISTINCT ON (device_id, metric) device_id, metric, time, value"
            " FROM readings WHERE device_id = ANY(%s) AND time > now() - interval '1 day'"
            " ORDER BY device_id, metric, time DESC",
            (list(device_ids),),
        ).fetchall()
