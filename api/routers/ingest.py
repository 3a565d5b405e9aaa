"""/api/v1 routes over ingested data: devices, readings and dead letters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import Caller, Viewer
from api.context import ApiContext, get_context
from api.params import Offset
from ingest.storage import is_hypertable

router = APIRouter(prefix="/api/v1", tags=["ingest"])

MAX_POINTS = 10_000
_BUCKET = re.compile(r"^(\d+)\s*(s|sec|m|min|h|hour|d|day)s?$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}

# A caller sees the devices bound to subjects its department supervises now, department
# admins included; the platform admin also sees unbound devices (and dead letters naming no
# device), because binding new devices is their job.
_VISIBLE = """
    (EXISTS (
        SELECT 1 FROM device_bindings b
        JOIN subject_departments sd ON sd.credit_code = b.credit_code
        WHERE b.device_id = {col} AND sd.department = %(dept)s
          AND sd.since <= now() AND (sd.until IS NULL OR sd.until > now()))
     OR (%(platform)s AND ({col} IS NULL
         OR NOT EXISTS (SELECT 1 FROM device_bindings b WHERE b.device_id = {col}))))
"""


def visible(col: str) -> str:
    return _VISIBLE.format(col=col)


def scope(caller: Caller) -> dict[str, Any]:
    return {"platform": caller.is_platform_admin, "dept": caller.department}


class Device(BaseModel):
    device_id: str
    kind: str
    first_seen: datetime
    last_seen: datetime
    online: bool | None
    status_changed_at: datetime | None


class Point(BaseModel):
    time: datetime
    value: float | None = None
    flag: str | None = Field(
        default=None, description="HJ 212 data flag of a raw reading: N, F, M, S, D, C, T or B"
    )
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    count: int | None = None


class Series(BaseModel):
    device_id: str
    metric: str
    bucket_seconds: int | None
    points: list[Point]


class DeadLetterOut(BaseModel):
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload_size: int
    payload_sha256: str
    payload_preview: str


Ctx = Annotated[ApiContext, Depends(get_context)]


@router.get("/devices", response_model=list[Device])
def list_devices(
    ctx: Ctx,
    caller: Viewer,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> list[Device]:
    """Devices seen on the broker (auto-registered on their first message)."""
    params = {**scope(caller), "online": online, "limit": limit, "offset": offset}
    with ctx.pool.connection() as conn:
        rows = conn.execute(
            "SELECT device_id, kind, first_seen, last_seen, online, status_changed_at"
            " FROM devices d WHERE "
            + visible("d.device_id")
            + " AND (%(online)s::boolean IS NULL OR online = %(online)s)"
            " ORDER BY device_id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
    return [Device(**dict(zip(Device.model_fields, r, strict=True))) for r in rows]


MAX_BUCKET = timedelta(days=366)


def parse_bucket(text: str) -> timedelta:
    m = _BUCKET.match(text.strip().lower())
    if not m or int(m.group(1)) == 0:
        raise HTTPException(
            422, f"bucket {text!r} must be a positive count and a unit, e.g. 30s, 5m, 1h, 1d"
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_BUCKET.total_seconds():
        raise HTTPException(422, f"bucket {text!r} is longer than {MAX_BUCKET.days} days")
    return timedelta(seconds=seconds)


@router.get("/devices/{device_id}/readings", response_model=Series)
def device_readings(
    device_id: str,
    ctx: Ctx,
    caller: Viewer,
    metric: str,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    bucket: str | None = None,
) -> Series:
    """Raw readings, or bucketed avg/min/max/count when `bucket` is given (e.g. 5m)."""
    end = _aware(to, "to") if to else datetime.now(UTC)
    start = _aware(from_, "from") if from_ else end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(422, "from must be earlier than to")
    width = parse_bucket(bucket) if bucket is not None else None
    params: dict[str, Any] = {
        **scope(caller),
        "device": device_id,
        "metric": metric,
        "start": start,
        "end": end,
    }
    with ctx.pool.connection() as conn:
        known = conn.execute(
            "SELECT 1 FROM devices d WHERE device_id = %(device)s AND " + visible("d.device_id"),
            params,
        ).fetchone()
        if known is None:
            raise HTTPException(404, f"device {device_id!r} not found")
        if width is None:
            rows = conn.execute(
                "SELECT time, value, flag FROM readings WHERE device_id = %(device)s"
                " AND metric = %(metric)s AND time >= %(start)s AND time < %(end)s"
                " ORDER BY time LIMIT %(limit)s",
                {**params, "limit": MAX_POINTS},
            ).fetchall()
            return Series(
                device_id=device_id,
                metric=metric,
                bucket_seconds=None,
                points=[Point(time=t, value=v, flag=f) for t, v, f in rows],
            )
        if (end - start) / width > MAX_POINTS:
            raise HTTPException(
                422, f"that range holds more than {MAX_POINTS} buckets of {bucket}; widen it"
            )
        # time_bucket on TimescaleDB, its plain-PostgreSQL twin date_bin elsewhere. Both get
        # the epoch as origin: time_bucket's default origin (2000-01-03) would shift buckets
        # whose width does not divide the 10,959 days between the two, e.g. 2d, 7d or 7m.
        fn = (
            "time_bucket(%(width)s, time, origin => '1970-01-01 00:00:00+00'::timestamptz)"
            if is_hypertable(conn)
            else "date_bin(%(width)s, time, '1970-01-01 00:00:00+00')"
        )
        rows = conn.execute(
            f"SELECT {fn} AS b, avg(value), min(value), max(value), count(*) FROM readings"
            " WHERE device_id = %(device)s AND metric = %(metric)s"
            " AND time >= %(start)s AND time < %(end)s GROUP BY b ORDER BY b",
            {**params, "width": width},
        ).fetchall()
    return Series(
        device_id=device_id,
        metric=metric,
        bucket_seconds=int(width.total_seconds()),
        points=[Point(time=b, avg=a, min=lo, max=hi, count=n) for b, a, lo, hi, n in rows],
    )


def _aware(t: datetime, name: str) -> datetime:
    if t.tzinfo is None:
        raise HTTPException(422, f"{name} must carry a UTC offset, e.g. 2026-11-26T08:00:00Z")
    return t


@router.get("/dead-letters", response_model=list[DeadLetterOut])
def dead_letters(
    ctx: Ctx,
    caller: Viewer,
    device_id: str | None = None,
    reason: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    """Messages, or parts of them, that were refused, newest first, with the reason."""
    params = {
        **scope(caller),
        "device": device_id,
        "reason": reason,
        "since": _aware(since, "since") if since else None,
        "limit": limit,
    }
    with ctx.pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, received_at, topic, device_id, reason, detail, payload_size,"
            " payload_sha256, payload FROM dead_letters dl"
            " WHERE (%(device)s::text IS NULL OR device_id = %(device)s)"
            " AND (%(reason)s::text IS NULL OR reason = %(reason)s)"
            " AND (%(since)s::timestamptz IS NULL OR received_at >= %(since)s)"
            " AND " + visible("dl.device_id") + " ORDER BY id DESC LIMIT %(limit)s",
            params,
        ).fetchall()
    return [
        DeadLetterOut(
            id=r[0],
            received_at=r[1],
            topic=r[2],
            device_id=r[3],
            reason=r[4],
            detail=r[5],
            payload_size=r[6],
            payload_sha256=r[7],
            payload_preview=bytes(r[8][:256]).decode("utf-8", "replace"),
        )
        for r in rows
    ]
