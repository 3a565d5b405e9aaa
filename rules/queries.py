"""Read-only queries of stored clues for the API and the workbench."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True, slots=True)
class TriggerReading:
    """A value that made a clue: a reading, or a window aggregate ending at `until`."""

    time: datetime
    device_id: str
    metric: str
    value: float | None
    until: datetime | None
    evidence_id: str | None


def triggers(
    conn: psycopg.Connection[Any], clue_ids: Sequence[int]
) -> dict[int, list[TriggerReading]]:
    """clue id -> its trigger readings, as the engine stored them."""
    rows = conn.execute(
        "SELECT id, trigger FROM clues WHERE id = ANY(%s)", (list(clue_ids),)
    ).fetchall()
    out: dict[int, list[TriggerReading]] = {}
    for clue_id, items in rows:
        out[clue_id] = [
            TriggerReading(
                time=datetime.fromisoformat(it["time"]),
                device_id=it["device_id"],
                metric=it["metric"],
                value=it.get("value"),
                until=datetime.fromisoformat(it["until"]) if it.get("until") else None,
                evidence_id=it.get("evidence_id"),
            )
            for it in items
        ]
    return out


@dataclass(frozen=True, slots=True)
class ClueLine:
    id: int
    rule_id: str
    title: str
    severity: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    summary: str


def subject_clues(
    conn: psycopg.Connection[Any], credit_code: str, departments: Sequence[str], limit: int = 100
) -> list[ClueLine]:
    """The subject's clues raised by rules of the given departments, newest first."""
    with conn.cursor(row_factory=class_row(ClueLine)) as cur:
        return cur.execute(
            "SELECT id, rule_id, title, severity, status, started_at, ended_at, summary"
            " FROM clues WHERE credit_code = %s AND department = ANY(%s) AND NOT withdrawn"
            " ORDER BY started_at DESC LIMIT %s",
            (credit_code, list(departments), limit),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class ClueRow:
    """A clue as the API lists it."""

    id: int
    fingerprint: str
    rule_id: str
    rule_version: int
    title: str
    department: str
    severity: str
    status: str
    withdrawn: bool
    credit_code: str | None
    device_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    summary: str
    trigger: list[dict[str, Any]]
    evidence_ids: list[str]


_CLUE_COLUMNS = (
    "id, fingerprint, rule_id, rule_version, title, department, severity, status, withdrawn,"
    " credit_code, device_ids, started_at, ended_at, summary, trigger, evidence_ids"
)


@dataclass(frozen=True, slots=True)
class ClueFilter:
    """Which of a department's clues to list; None leaves a field open."""

    credit_code: str | None = None
    rule_id: str | None = None
    status: str | None = None
    device_id: str | None = None
    since: datetime | None = None  # started at or after
    until: datetime | None = None  # started before


def department_clues(
    conn: psycopg.Connection[Any], department: str, where: ClueFilter, limit: int
) -> list[ClueRow]:
    """The department's clues matching `where`, newest first."""
    sql = f"SELECT {_CLUE_COLUMNS} FROM clues WHERE department = %s"
    params: list[Any] = [department]
    for column, value in (
        ("credit_code", where.credit_code),
        ("rule_id", where.rule_id),
        ("status", where.status),
    ):
        if value is not None:
            sql += f" AND {column} = %s"
            params.append(value)
    if where.device_id is not None:
        sql += " AND %s = ANY(device_ids)"
        params.append(where.device_id)
    if where.since is not None:
        sql += " AND started_at >= %s"
        params.append(where.since)
    if where.until is not None:
        sql += " AND started_at < %s"
        params.append(where.until)
    sql += " ORDER BY started_at DESC, id DESC LIMIT %s"
    params.append(limit)
    with conn.cursor(row_factory=class_row(ClueRow)) as cur:
        return cur.execute(sql, params).fetchall()


def department_clue(conn: psycopg.Connection[Any], department: str, clue_id: int) -> ClueRow | None:
    """One clue, if it is the department's."""
    with conn.cursor(row_factory=class_row(ClueRow)) as cur:
        return cur.execute(
            f"SELECT {_CLUE_COLUMNS} FROM clues WHERE id = %s AND department = %s",
            (clue_id, department),
        ).fetchone()
