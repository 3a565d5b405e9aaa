"""Writes and reads of the devices table for other intakes (video's cameras, HJ 212 loggers)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class KnownDevice:
    device_id: str
    last_seen: datetime
    online: bool | None
    status_changed_at: datetime | None


def known_of_kind(conn: psycopg.Connection[Any], kind: str) -> list[KnownDevice]:
    """The stored devices of one kind (e.g. 'camera')."""
    with conn.cursor(row_factory=class_row(KnownDevice)) as cur:
        return cur.execute(
            "SELECT device_id, last_seen, online, status_changed_at FROM devices WHERE kind = %s",
            (kind,),
        ).fetchall()


def mark_offline(conn: psycopg.Connection[Any], device_id: str, changed: datetime | None) -> None:
    """Offline, on a known row only: a device never seen has no first_seen to record."""
    conn.execute(
        "UPDATE devices SET online = false, status_changed_at = %s WHERE device_id = %s",
        (changed, device_id),
    )


def seen(
    conn: psycopg.Connection[Any],
    device_id: str,
    kind: str,
    last_seen: datetime,
    online: bool,
    changed: datetime | None,
) -> None:
    """Record a device of `kind` as seen at `last_seen` (never moving last_seen back)."""
    conn.execute(
        "INSERT INTO devices (device_id, kind, first_seen, last_seen, online,"
        " status_changed_at) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind,"
        " last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen),"
        " online = EXCLUDED.online,"
        " status_changed_at = COALESCE(EXCLUDED.status_changed_at,"
        " devices.status_changed_at)",
        (device_id, kind, last_seen, last_seen, online, changed),
    )


def register(conn: psycopg.Connection[Any], device_id: str, kind: str) -> None:
    """A device known before it sends anything (a registered logger): a row of `kind`,
    or the kind set on a row the MQTT intake created as a plain sensor."""
    conn.execute(
        "INSERT INTO devices (device_id, kind, first_seen, last_seen)"
        " VALUES (%s, %s, now(), now())"
        " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind"
        " WHERE devices.kind = 'sensor'",
        (device_id, kind),
    )
