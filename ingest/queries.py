"""Read-only queries of stored readings, devices and dead letters, for the API and workbench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row

from ingest.storage import is_hypertable
from subjects.queries import device_unbound, device_visible


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
            " FROM devices d WHERE " + device_unbound("d.device_id") + " ORDER BY last_seen DESC"
            " LIMIT %s",
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


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose rows a read returns: a department's, plus unbound ones for the platform admin."""

    department: str
    platform: bool

    def params(self) -> dict[str, Any]:
        return {"dept": self.department, "platform": self.platform}


def visible_devices(
    conn: psycopg.Connection[Any], scope: Scope, online: bool | None, limit: int, offset: int
) -> list[DeviceState]:
    """Devices the scope may see, by id (optionally only those online or offline)."""
    params = {**scope.params(), "online": online, "limit": limit, "offset": offset}
    with conn.cursor(row_factory=class_row(DeviceState)) as cur:
        return cur.execute(
            "SELECT device_id, kind, first_seen, last_seen, online, status_changed_at"
            " FROM devices d WHERE "
            + device_visible("d.device_id")
            + " AND (%(online)s::boolean IS NULL OR online = %(online)s)"
            " ORDER BY device_id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()


def is_visible_device(conn: psycopg.Connection[Any], scope: Scope, device_id: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM devices d WHERE device_id = %(device)s AND " + device_visible("d.device_id"),
        {**scope.params(), "device": device_id},
    ).fetchone()
    return row is not None


@dataclass(frozen=True, slots=True)
class RawPoint:
    time: datetime
    value: float
    flag: str


def raw_points(
    conn: psycopg.Connection[Any],
    device_id: str,
    metric: str,
    start: datetime,
    end: datetime,
    limit: int,
) -> list[RawPoint]:
    """Readings of one device and metric in [start, end), oldest first, with their flags."""
    with conn.cursor(row_factory=class_row(RawPoint)) as cur:
        return cur.execute(
            "SELECT time, value, flag FROM readings WHERE device_id = %s"
            " AND metric = %s AND time >= %s AND time < %s ORDER BY time LIMIT %s",
            (device_id, metric, start, end, limit),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class Bucket:
    time: datetime
    avg: float
    min: float
    max: float
    count: int


def buckets(
    conn: psycopg.Connection[Any],
    device_id: str,
    metric: str,
    start: datetime,
    end: datetime,
    width: timedelta,
) -> list[Bucket]:
    """avg/min/max/count of one device and metric per bucket of `width` in [start, end)."""
    # time_bucket on TimescaleDB, its plain-PostgreSQL twin date_bin elsewhere. Both get
    # the epoch as origin: time_bucket's default origin (2000-01-03) would shift buckets
    # whose width does not divide the 10,959 days between the two, e.g. 2d, 7d or 7m.
    fn = (
        "time_bucket(%(width)s, time, origin => '1970-01-01 00:00:00+00'::timestamptz)"
        if is_hypertable(conn)
        else "date_bin(%(width)s, time, '1970-01-01 00:00:00+00')"
    )
    with conn.cursor(row_factory=class_row(Bucket)) as cur:
        return cur.execute(
            f"SELECT {fn} AS time, avg(value) AS avg, min(value) AS min, max(value) AS max,"
            " count(*) AS count FROM readings"
            " WHERE device_id = %(device)s AND metric = %(metric)s"
            " AND time >= %(start)s AND time < %(end)s GROUP BY 1 ORDER BY 1",
            {"device": device_id, "metric": metric, "start": start, "end": end, "width": width},
        ).fetchall()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload_size: int
    payload_sha256: str
    payload: bytes


def dead_letters(
    conn: psycopg.Connection[Any],
    scope: Scope,
    device_id: str | None,
    reason: str | None,
    since: datetime | None,
    limit: int,
) -> list[DeadLetter]:
    """Refused messages the scope may see, newest first."""
    params = {
        **scope.params(),
        "device": device_id,
        "reason": reason,
        "since": since,
        "limit": limit,
    }
    with conn.cursor(row_factory=class_row(DeadLetter)) as cur:
        return cur.execute(
            "SELECT id, received_at, topic, device_id, reason, detail, payload_size,"
            " payload_sha256, payload FROM dead_letters dl"
            " WHERE (%(device)s::text IS NULL OR device_id = %(device)s)"
            " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
            " AND " + device_visible("dl.device_id") + " ORDER BY id DESC LIMIT %(limit)s",
            params,
        ).fetchall()
