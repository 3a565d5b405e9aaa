"""/api/v1 routes over ingested data: devices, readings and dead letters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import Caller, Viewer
from api.context import Ctx
from api.params import Offset, aware
from ingest import queries
from ingest.queries import Scope

router = APIRouter(prefix="/api/v1", tags=["ingest"])

MAX_POINTS = 10_000
_BUCKET = re.compile(r"^(\d+)\s*(s|sec|m|min|h|hour|d|day)s?$")
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def scope(caller: Caller) -> Scope:
    return Scope(department=caller.department, platform=caller.is_platform_admin)


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


@router.get("/devices", response_model=list[Device])
def list_devices(
    ctx: Ctx,
    caller: Viewer,
    online: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> list[Device]:
    """Devices seen on the broker (auto-registered on their first message)."""
    with ctx.pool.connection() as conn:
        rows = queries.visible_devices(conn, scope(caller), online, limit, offset)
    return [Device.model_validate(r, from_attributes=True) for r in rows]


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
    end = aware(to, "to") if to else datetime.now(UTC)
    start = aware(from_, "from") if from_ else end - timedelta(hours=24)
    if start >= end:
        raise HTTPException(422, "from must be earlier than to")
    width = parse_bucket(bucket) if bucket is not None else None
    with ctx.pool.connection() as conn:
        if not queries.is_visible_device(conn, scope(caller), device_id):
            raise HTTPException(404, f"device {device_id!r} not found")
        if width is None:
            raw = queries.raw_points(conn, device_id, metric, start, end, MAX_POINTS)
            return Series(
                device_id=device_id,
                metric=metric,
                bucket_seconds=None,
                points=[Point(time=p.time, value=p.value, flag=p.flag) for p in raw],
            )
        if (end - start) / width > MAX_POINTS:
            raise HTTPException(
                422, f"that range holds more than {MAX_POINTS} buckets of {bucket}; widen it"
            )
        rows = queries.buckets(conn, device_id, metric, start, end, width)
    return Series(
        device_id=device_id,
        metric=metric,
        bucket_seconds=int(width.total_seconds()),
        points=[Point(time=b.time, avg=b.avg, min=b.min, max=b.max, count=b.count) for b in rows],
    )


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
    with ctx.pool.connection() as conn:
        rows = queries.dead_letters(
            conn,
            scope(caller),
            device_id,
            reason,
            aware(since, "since") if since else None,
            limit,
        )
    return [
        DeadLetterOut(
            id=r.id,
            received_at=r.received_at,
            topic=r.topic,
            device_id=r.device_id,
            reason=r.reason,
            detail=r.detail,
            payload_size=r.payload_size,
            payload_sha256=r.payload_sha256,
            payload_preview=bytes(r.payload[:256]).decode("utf-8", "replace"),
        )
        for r in rows
    ]
