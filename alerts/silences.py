"""Silences: time-bounded mutes of notifications by subject, rule, device or department."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import class_row

from alerts import audit
from alerts.errors import CodedError, NotFoundError, Refusal
from core.principal import Principal


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


# A silence longer than a quarter is a standing exemption, not a mute: that belongs in the
# rule pack or the subject's supervision, where it is reviewed.
MAX_DURATION = timedelta(days=90)


class SilenceError(CodedError):
    """A silence request breaks a rule; the message names the field."""


def validate(starts_at: datetime, ends_at: datetime, reason: str, value: str) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise SilenceError(
            Refusal.SILENCE_NAIVE_TIME, "starts_at and ends_at must carry a UTC offset"
        )
    if ends_at <= starts_at:
        raise SilenceError(Refusal.SILENCE_END_BEFORE_START, "ends_at must be later than starts_at")
    if ends_at - starts_at > MAX_DURATION:
        raise SilenceError(
            Refusal.SILENCE_TOO_LONG,
            f"ends_at: a silence lasts at most {MAX_DURATION.days} days from starts_at",
        )
    if not reason.strip():
        raise SilenceError(
            Refusal.SILENCE_REASON_REQUIRED, "reason must say why notifications are muted"
        )
    if not value.strip():
        raise SilenceError(
            Refusal.SILENCE_VALUE_REQUIRED,
            "value must name the subject, rule, device or department",
        )


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


def fetch_in_force(conn: psycopg.Connection[Any], department: str) -> list[SilenceRow]:
    """The department's silences in force now (by the database's clock, as they are judged)."""
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    return fetch(conn, department, active_at=now[0])


def _record(
    conn: psycopg.Connection[Any], actor: Principal, row: SilenceRow, action: str, now: datetime
) -> None:
    audit.append(
        conn, [audit.AuditRecord(actor.name, "silence", str(row.id), action, row.summary())], now
    )


def create(
    conn: psycopg.Connection[Any],
    actor: Principal,
    matcher: Matcher,
    value: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    now: datetime,
) -> SilenceRow:
    """A silence of the actor's department, audited in the same transaction."""
    if actor.is_system:
        raise SilenceError(Refusal.SILENCE_NO_DEPARTMENT, "a silence belongs to a department")
    with conn.transaction():
        row = insert(
            conn, actor.department, matcher, value, starts_at, ends_at, actor.name, reason, now
        )
        _record(conn, actor, row, "silence.created", now)
    return row


def change(
    conn: psycopg.Connection[Any],
    actor: Principal,
    silence_id: int,
    now: datetime,
    ends_at: datetime | None = None,
    reason: str | None = None,
    expire: bool = False,
) -> SilenceRow:
    """Change the end or the reason, or expire now; a silence is never deleted."""
    with conn.transaction():
        row = _department_silence(conn, actor, silence_id, lock=True)
        if row.expired_at is not None:
            raise SilenceError(Refusal.SILENCE_EXPIRED, f"silence {silence_id} has already expired")
        if expire:
            conn.execute(
                "UPDATE silences SET expired_at = %s, expired_by = %s WHERE id = %s",
                (now, actor.name, silence_id),
            )
            action = "silence.expired"
        else:
            new_end = ends_at if ends_at is not None else row.ends_at
            new_reason = reason if reason is not None else row.reason
            validate(row.starts_at, new_end, new_reason, row.value)
            conn.execute(
                "UPDATE silences SET ends_at = %s, reason = %s WHERE id = %s",
                (new_end, new_reason, silence_id),
            )
            action = "silence.updated"
        (row,) = fetch(conn, actor.department, silence_id)
        _record(conn, actor, row, action, now)
    return row


def check_extension(row: SilenceRow, ends_at: datetime, now: datetime) -> None:
    """Refuse an extension that would not extend: the new end must carry an offset, lie
    after now and after the current end, and keep within MAX_DURATION of the start."""
    if ends_at.tzinfo is None:
        raise SilenceError(Refusal.SILENCE_NAIVE_TIME, "ends_at must carry a UTC offset")
    if row.expired_at is not None or row.ends_at <= now:
        raise SilenceError(Refusal.SILENCE_EXPIRED, f"silence {row.id} has already ended")
    if ends_at <= now:
        raise SilenceError(Refusal.SILENCE_END_IN_PAST, "ends_at must be later than now")
    if ends_at <= row.ends_at:
        raise SilenceError(
            Refusal.SILENCE_END_NOT_LATER,
            f"ends_at must be later than the current end {row.ends_at.isoformat()}",
        )
    validate(row.starts_at, ends_at, row.reason, row.value)


def _department_silence(
    conn: psycopg.Connection[Any], actor: Principal, silence_id: int, lock: bool = False
) -> SilenceRow:
    """The actor's department's silence `silence_id`; not found for another department's."""
    if actor.is_system:
        raise SilenceError(Refusal.SILENCE_NO_DEPARTMENT, "a silence belongs to a department")
    found = fetch(conn, actor.department, silence_id, lock=lock)
    if not found:
        raise NotFoundError(f"silence {silence_id} not found")
    return found[0]


def preview_extension(
    conn: psycopg.Connection[Any], actor: Principal, silence_id: int, ends_at: datetime,
    now: datetime,
) -> SilenceRow:  # fmt: skip
    """The silence as it is, after checking that `ends_at` would extend it (nothing written)."""
    row = _department_silence(conn, actor, silence_id)
    check_extension(row, ends_at, now)
    return row


def extend(
    conn: psycopg.Connection[Any], actor: Principal, silence_id: int, ends_at: datetime,
    now: datetime,
) -> SilenceRow:  # fmt: skip
    """Move a running silence's end later, audited (old and new end) in the same transaction."""
    with conn.transaction():
        before = _department_silence(conn, actor, silence_id, lock=True)
        check_extension(before, ends_at, now)
        conn.execute("UPDATE silences SET ends_at = %s WHERE id = %s", (ends_at, silence_id))
        (row,) = fetch(conn, actor.department, silence_id)
        detail = {**row.summary(), "previous_ends_at": before.ends_at}
        audit.append(
            conn,
            [audit.AuditRecord(actor.name, "silence", str(row.id), "silence.extended", detail)],
            now,
        )
    return row


def covering(
    conn: psycopg.Connection[Any],
    department: str,
    subject_keys: Sequence[str],
    rule_ids: Sequence[str],
    device_ids: Sequence[str],
    departments: Sequence[str],
    at: datetime,
) -> list[SilenceRow]:
    """The department's silences in force at `at` that would mute an alert with these keys,
    rules, devices and departments (as alerts.routing matches them): those an alert's page
    offers to extend."""
    with conn.cursor(row_factory=class_row(SilenceRow)) as cur:
        return cur.execute(
            f"SELECT {COLUMNS} FROM silences WHERE department = %(dept)s"
            " AND expired_at IS NULL AND starts_at <= %(at)s AND ends_at > %(at)s"
            " AND ((matcher = 'subject' AND value = ANY(%(subjects)s))"
            " OR (matcher = 'rule' AND value = ANY(%(rules)s))"
            " OR (matcher = 'device' AND value = ANY(%(devices)s))"
            " OR (matcher = 'department' AND value = ANY(%(departments)s)))"
            " ORDER BY ends_at, id",
            {"dept": department, "at": at, "subjects": list(subject_keys),
             "rules": list(rule_ids), "devices": list(device_ids),
             "departments": list(departments)},
        ).fetchall()  # fmt: skip
