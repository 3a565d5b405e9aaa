"""Silences: time-bounded mutes of notifications by subject, rule, device or department."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import class_row


class Matcher(StrEnum):
    SUBJECT = "subject"
    RULE = "rule"
    DEVICE = "device"
    DEPARTMENT = "department"


@dataclass(slots=True)
class SilenceRow:
    id: int
    department: str
    matcher: str
    value: str
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str
    created_at: datetime
    expired_at: datetime | None
    expired_by: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "department": self.department,
            "matcher": self.matcher,
            "value": self.value,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "reason": self.reason,
            "expired_at": self.expired_at,
        }


COLUMNS = (
    "id, department, matcher, value, starts_at, ends_at, created_by, reason, created_at,"
    " expired_at, expired_by"
)


class SilenceError(ValueError):
    """A silence request breaks a rule; the message names the field."""


def validate(starts_at: datetime, ends_at: datetime, reason: str, value: str) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise SilenceError("starts_at and ends_at must carry a UTC offset")
    if ends_at <= starts_at:
        raise SilenceError("ends_at must be later than starts_at")
    if not reason.strip():
        raise SilenceError("reason must say why notifications are muted")
    if not value.strip():
        raise SilenceError("value must name the subject, rule, device or department")


def insert(
    conn: psycopg.Connection[Any],
    department: str,
    matcher: Matcher,
    value: str,
    starts_at: datetime,
    ends_at: datetime,
    created_by: str,
    reason: str,
    now: datetime,
) -> SilenceRow:
    validate(starts_at, ends_at, reason, value)
    with conn.cursor(row_factory=class_row(SilenceRow)) as cur:
        row = cur.execute(
            "INSERT INTO silences (department, matcher, value, starts_at, ends_at, created_by,"
            f" reason, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (department, matcher.value, value, starts_at, ends_at, created_by, reason, now),
        ).fetchone()
    assert row is not None
    return row


def fetch(
    conn: psycopg.Connection[Any], department: str, silence_id: int | None = None,
    active_at: datetime | None = None, lock: bool = False,
) -> list[SilenceRow]:  # fmt: skip
    sql = f"SELECT {COLUMNS} FROM silences WHERE department = %(dept)s"
    if silence_id is not None:
        sql += " AND id = %(id)s"
    if active_at is not None:
        sql += " AND expired_at IS NULL AND starts_at <= %(at)s AND ends_at > %(at)s"
    sql += " ORDER BY id DESC" + (" FOR UPDATE" if lock else "")
    with conn.cursor(row_factory=class_row(SilenceRow)) as cur:
        return cur.execute(sql, {"dept": department, "id": silence_id, "at": active_at}).fetchall()
