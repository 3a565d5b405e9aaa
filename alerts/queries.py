"""Read-only queries the workbench pages use: the board, an alert's record, tasks, findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson
import psycopg
from psycopg.rows import class_row, dict_row

from alerts.lifecycle import OPEN_STATES
from alerts.records import (
    ALERT_COLUMNS,
    AlertRow,
    TaskRow,
    alert_from_values,
    fetch_alerts,
    fetch_tasks,
)


class BoardSort(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    SEVERITY = "severity"
    DUE = "due"


_ORDER = {
    BoardSort.OPENED: "a.opened_at {d}, a.id {d}",
    BoardSort.UPDATED: "a.updated_at {d}, a.id {d}",
    # Rank, not the text: critical > major > warning > info.
    BoardSort.SEVERITY: "array_position(ARRAY['info','warning','major','critical'], a.severity)"
    " {d}, a.opened_at DESC, a.id DESC",
    BoardSort.DUE: "t.due_at {d} NULLS LAST, a.id DESC",
}


@dataclass(frozen=True, slots=True)
class BoardFilter:
    """What the board asks for; `department` is the caller's (the scope, always applied)."""

    department: str
    states: tuple[str, ...] = tuple(sorted(s.value for s in OPEN_STATES))
    severities: tuple[str, ...] = ()
    grid: str | None = None
    involving: str | None = None  # another department taking part
    we_lead: bool = False
    credit_codes: tuple[str, ...] | None = None  # from a name search; () matches nothing
    code_prefix: str | None = None  # a (partial) credit code typed in the search box
    sort: BoardSort = BoardSort.OPENED
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class BoardRow:
    alert: AlertRow
    task_id: int | None
    task_kind: str | None
    lead_department: str | None
    due_at: datetime | None
    task_status: str | None


@dataclass(frozen=True, slots=True)
class BoardPage:
    rows: list[BoardRow]
    total: int
    open_by_state: dict[str, int]


_TASK_OF_ALERT = (
    "LEFT JOIN LATERAL (SELECT t.id, t.kind, t.lead_department, t.due_at, t.status"
    " FROM task_alerts ta JOIN tasks t ON t.id = ta.task_id WHERE ta.alert_id = a.id"
    " ORDER BY t.id DESC LIMIT 1) t ON true"
)


def _where(f: BoardFilter) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {
        "dept": f.department,
        "states": list(f.states) or None,
        "severities": list(f.severities) or None,
        "grid": f.grid or None,
        "involving": f.involving or None,
        "codes": list(f.credit_codes) if f.credit_codes is not None else None,
        "prefix": (f.code_prefix.upper() + "%") if f.code_prefix else None,
    }
    where = [
        "%(dept)s = ANY(a.departments)",
        "(%(states)s::text[] IS NULL OR a.state = ANY(%(states)s))",
        "(%(severities)s::text[] IS NULL OR a.severity = ANY(%(severities)s))",
        "(%(grid)s::text IS NULL OR a.grid = %(grid)s)",
        "(%(involving)s::text IS NULL OR %(involving)s = ANY(a.departments))",
    ]
    if f.we_lead:
        where.append("t.lead_department = %(dept)s")
    if f.credit_codes is not None and f.code_prefix:
        where.append("(a.credit_code = ANY(%(codes)s) OR a.credit_code LIKE %(prefix)s)")
    elif f.credit_codes is not None:
        where.append("a.credit_code = ANY(%(codes)s)")
    elif f.code_prefix:
        where.append("a.credit_code LIKE %(prefix)s")
    return " AND ".join(where), params


def board(conn: psycopg.Connection[Any], f: BoardFilter) -> BoardPage:
    """One page of the caller's alerts with their task, the match count, and open counts."""
    where, params = _where(f)
    order = _ORDER[f.sort].format(d="DESC" if f.descending else "ASC")
    cols = ", ".join(f"a.{c.strip()}" for c in ALERT_COLUMNS.split(","))
    task = "t.id, t.kind, t.lead_department, t.due_at, t.status"
    if f.we_lead or f.sort is BoardSort.DUE:
        sql = (
            f"SELECT {cols}, {task} FROM alerts a {_TASK_OF_ALERT} WHERE {where}"
            f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
        )
    else:
        # Filter, sort and cut the page on the alerts alone, then look up the page's tasks:
        # 50 task look-ups instead of one per matching alert (10,000 on a busy board).
        sql = (
            f"SELECT {cols}, {task} FROM (SELECT {cols} FROM alerts a WHERE {where}"
            f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s) a {_TASK_OF_ALERT}"
            f" ORDER BY {order}"
        )
    rows = conn.execute(sql, {**params, "limit": f.limit, "offset": f.offset}).fetchall()
    n = len(ALERT_COLUMNS.split(","))
    out = []
    for r in rows:
        out.append(BoardRow(alert_from_values(r[:n]), *r[n:]))
    # The match count and the open counts in one pass over the department's alerts (the
    # open states are counted whatever the filters; the matches may be closed ones).
    counts = conn.execute(
        f"SELECT count(*) FILTER (WHERE {where}),"
        " count(*) FILTER (WHERE a.state = 'open'),"
        " count(*) FILTER (WHERE a.state = 'acknowledged'),"
        " count(*) FILTER (WHERE a.state = 'dispatched')"
        f" FROM alerts a {_TASK_OF_ALERT if f.we_lead else ''}"
        " WHERE %(dept)s = ANY(a.departments)"
        f" AND (a.state IN ('open', 'acknowledged', 'dispatched') OR ({where}))",
        params,
    ).fetchone()
    assert counts is not None  # an aggregate always answers one row
    by_state = dict(zip(("open", "acknowledged", "dispatched"), counts[1:], strict=True))
    return BoardPage(out, int(counts[0]), by_state)


def grids(conn: psycopg.Connection[Any], department: str) -> list[str]:
    """Grids the department's alerts are in (for the board's grid filter)."""
    rows = conn.execute(
        "SELECT DISTINCT grid FROM alerts WHERE %s = ANY(departments) AND grid <> ''"
        " ORDER BY grid LIMIT 500",
        (department,),
    ).fetchall()
    return [r[0] for r in rows]


# -- one alert --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClueView:
    clue_id: int
    rule_id: str
    rule_version: int
    title: str
    department: str
    severity: str
    status: str
    device_ids: list[str]
    evidence_ids: list[str]
    started_at: datetime
    ended_at: datetime | None
    summary: str


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    alert: AlertRow
    clues: list[ClueView]
    timeline: list[TimelineItem]
    tasks: list[TaskRow]


def alert_record(
    conn: psycopg.Connection[Any], alert_id: int, department: str
) -> AlertRecord | None:
    """The alert with clues, timeline and tasks, or None when the department does not see it."""
    found = fetch_alerts(conn, "id = %s AND %s = ANY(departments)", (alert_id, department))
    if not found:
        return None
    with conn.cursor(row_factory=class_row(ClueView)) as cur:
        clues = cur.execute(
            "SELECT clue_id, rule_id, rule_version, title, department, severity, status,"
            " device_ids, evidence_ids, started_at, ended_at, summary FROM alert_clues"
            " WHERE alert_id = %s ORDER BY started_at, clue_id",
            (alert_id,),
        ).fetchall()
    with conn.cursor(row_factory=class_row(TimelineItem)) as cur:
        timeline = cur.execute(
            "SELECT at, actor, kind, detail FROM alert_timeline WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()
    tasks = fetch_tasks(
        conn, "id IN (SELECT task_id FROM task_alerts WHERE alert_id = %s) ORDER BY id", (alert_id,)
    )
    return AlertRecord(found[0], clues, timeline, tasks)


def subject_alerts(
    conn: psycopg.Connection[Any], credit_code: str, department: str, limit: int = 50
) -> list[AlertRow]:
    """The subject's alerts the department sees, newest first."""
    return fetch_alerts(
        conn,
        "credit_code = %s AND %s = ANY(departments) ORDER BY opened_at DESC LIMIT %s",
        (credit_code, department, limit),
    )


def open_alert_counts(conn: psycopg.Connection[Any], department: str) -> dict[str, dict[str, int]]:
    """credit code -> severity -> open alerts the department sees (for the map)."""
    rows = conn.execute(
        "SELECT credit_code, severity, count(*) FROM alerts WHERE %s = ANY(departments)"
        " AND state IN ('open', 'acknowledged', 'dispatched') AND credit_code IS NOT NULL"
        " GROUP BY credit_code, severity",
        (department,),
    ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for code, sev, n in rows:
        out.setdefault(code, {})[sev] = n
    return out


# -- tasks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingView:
    id: int
    task_id: int
    department: str
    author: str
    text: str
    photos: list[str]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TaskRecord:
    task: TaskRow
    alert_ids: list[int]
    findings: list[FindingView] = field(default_factory=list)


def tasks_of(
    conn: psycopg.Connection[Any],
    department: str,
    lead_only: bool = False,
    open_only: bool = True,
    credit_code: str | None = None,
    limit: int = 200,
) -> list[TaskRow]:
    """Tasks the department leads (lead_only) or takes part in; open ones first by due time."""
    return fetch_tasks(
        conn,
        "%s = ANY(departments) AND (NOT %s OR lead_department = %s)"
        " AND (NOT %s OR status <> 'done') AND (%s::text IS NULL OR credit_code = %s)"
        " ORDER BY status = 'done', due_at, id LIMIT %s",
        (department, lead_only, department, open_only, credit_code, credit_code, limit),
    )


def task_record(conn: psycopg.Connection[Any], task_id: int, department: str) -> TaskRecord | None:
    tasks = fetch_tasks(conn, "id = %s AND %s = ANY(departments)", (task_id, department))
    if not tasks:
        return None
    alert_ids = [
        r[0]
        for r in conn.execute(
            "SELECT alert_id FROM task_alerts WHERE task_id = %s ORDER BY alert_id", (task_id,)
        )
    ]
    return TaskRecord(tasks[0], alert_ids, findings(conn, task_id))


def findings(conn: psycopg.Connection[Any], task_id: int) -> list[FindingView]:
    with conn.cursor(row_factory=class_row(FindingView)) as cur:
        return cur.execute(
            "SELECT f.id, f.task_id, f.department, f.author, f.text,"
            " coalesce(array_agg(p.sha256 ORDER BY p.position)"
            " FILTER (WHERE p.sha256 IS NOT NULL), '{}') AS photos, f.created_at"
            " FROM task_findings f LEFT JOIN task_finding_photos p ON p.finding_id = f.id"
            " WHERE f.task_id = %s GROUP BY f.id ORDER BY f.id",
            (task_id,),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class Photo:
    sha256: str
    content_type: str
    content: bytes


def finding_photo(conn: psycopg.Connection[Any], sha256: str, department: str) -> Photo | None:
    """A finding photo, if it belongs to a task the department takes part in."""
    row = conn.execute(
        "SELECT p.sha256, p.content_type, p.content FROM finding_photos p"
        " WHERE p.sha256 = %s AND EXISTS (SELECT 1 FROM task_finding_photos fp"
        " JOIN task_findings f ON f.id = fp.finding_id JOIN tasks t ON t.id = f.task_id"
        " WHERE fp.sha256 = p.sha256 AND %s = ANY(t.departments))",
        (sha256, department),
    ).fetchone()
    return Photo(row[0], row[1], bytes(row[2])) if row else None


# -- notifications ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationLine:
    id: int
    alert_id: int | None
    route: str
    event: str
    status: str
    suppressed_by: str | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


def notifications(
    conn: psycopg.Connection[Any], department: str, status: str | None, limit: int = 200
) -> list[NotificationLine]:
    """The outbox rows of the department's alerts, newest first."""
    with conn.cursor(row_factory=class_row(NotificationLine)) as cur:
        return cur.execute(
            "SELECT o.id, o.alert_id, o.route, o.event, o.status, o.suppressed_by, o.attempts,"
            " o.next_attempt_at, o.last_error, o.created_at, o.sent_at FROM outbox o"
            " JOIN alerts a ON a.id = o.alert_id WHERE %s = ANY(a.departments)"
            " AND (%s::text IS NULL OR o.status = %s) ORDER BY o.id DESC LIMIT %s",
            (department, status, status, limit),
        ).fetchall()


def silenced_counts(conn: psycopg.Connection[Any], silence_ids: list[int]) -> dict[int, int]:
    """How many notifications each silence muted."""
    rows = conn.execute(
        "SELECT suppressed_by, count(*) FROM outbox WHERE suppressed_by = ANY(%s)"
        " GROUP BY suppressed_by",
        ([f"silence:{i}" for i in silence_ids],),
    ).fetchall()
    return {int(k.split(":", 1)[1]): int(n) for k, n in rows if k and k.startswith("silence:")}


def open_alerts_matching(
    conn: psycopg.Connection[Any], department: str, matcher: str, value: str
) -> int:
    """Open alerts of the department a silence on (matcher, value) would mute now."""
    if matcher == "subject":
        sql = "subject_key = %s"
    elif matcher == "rule":
        sql = "id IN (SELECT alert_id FROM alert_clues WHERE rule_id = %s)"
    elif matcher == "device":
        sql = "id IN (SELECT alert_id FROM alert_clues WHERE %s = ANY(device_ids))"
    else:
        sql = "%s = ANY(departments)"
    row = conn.execute(
        f"SELECT count(*) FROM alerts WHERE %s = ANY(departments)"
        f" AND state IN ('open', 'acknowledged', 'dispatched') AND {sql}",
        (department, value),
    ).fetchone()
    return int(row[0]) if row else 0


# -- lists of the API ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which of a department's alerts to list; None (or empty) leaves a field open."""

    states: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    department: str | None = None  # another department taking part
    grid: str | None = None
    subject: str | None = None
    since: datetime | None = None  # opened at or after
    until: datetime | None = None  # opened before


def department_alerts(
    conn: psycopg.Connection[Any], department: str, f: AlertFilter, limit: int, offset: int
) -> list[AlertRow]:
    """Alerts the department takes part in, newest first."""
    return fetch_alerts(
        conn,
        "%(dept)s = ANY(departments)"
        " AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s))"
        " AND (%(severities)s::text[] IS NULL OR severity = ANY(%(severities)s))"
        " AND (%(department)s::text IS NULL OR %(department)s = ANY(departments))"
        " AND (%(grid)s::text IS NULL OR grid = %(grid)s)"
        " AND (%(subject)s::text IS NULL OR subject_key = %(subject)s)"
        " AND (%(since)s::timestamptz IS NULL OR opened_at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR opened_at < %(until)s)"
        " ORDER BY opened_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {
            "dept": department,
            "states": list(f.states) or None,
            "severities": list(f.severities) or None,
            "department": f.department,
            "grid": f.grid,
            "subject": f.subject,
            "since": f.since,
            "until": f.until,
            "limit": limit,
            "offset": offset,
        },
    )


def department_tasks(
    conn: psycopg.Connection[Any],
    department: str,
    status: str | None,
    kind: str | None,
    subject: str | None,
    limit: int,
    offset: int,
) -> list[TaskRow]:
    """Tasks the department leads or takes part in, newest first."""
    return fetch_tasks(
        conn,
        "%(dept)s = ANY(departments)"
        " AND (%(status)s::text IS NULL OR status = %(status)s)"
        " AND (%(kind)s::text IS NULL OR kind = %(kind)s)"
        " AND (%(subject)s::text IS NULL OR subject_key = %(subject)s)"
        " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
        {
            "dept": department,
            "status": status,
            "kind": kind,
            "subject": subject,
            "limit": limit,
            "offset": offset,
        },
    )


def department_task(conn: psycopg.Connection[Any], task_id: int, department: str) -> TaskRow | None:
    rows = fetch_tasks(conn, "id = %s AND %s = ANY(departments)", (task_id, department))
    return rows[0] if rows else None


@dataclass(frozen=True, slots=True)
class DrawLine:
    id: int
    department: str
    period: str
    credit_codes: list[str]


def department_draws(
    conn: psycopg.Connection[Any], department: str, period: str | None
) -> list[DrawLine]:
    """The department's double-random draws (optionally of one period), newest first."""
    with conn.cursor(row_factory=class_row(DrawLine)) as cur:
        return cur.execute(
            "SELECT d.id, d.department, d.period,"
            " coalesce(array_agg(s.credit_code ORDER BY s.credit_code)"
            " FILTER (WHERE s.credit_code IS NOT NULL), '{}') AS credit_codes"
            " FROM draws d LEFT JOIN draw_subjects s ON s.draw_id = d.id"
            " WHERE d.department = %s AND (%s::text IS NULL OR d.period = %s)"
            " GROUP BY d.id ORDER BY d.id DESC",
            (department, period, period),
        ).fetchall()


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of the audit chain as a page lists it."""

    seq: int
    at: datetime
    actor: str
    action: str
    payload: dict[str, Any]


def subject_audit(
    conn: psycopg.Connection[Any], credit_code: str, limit: int = 100
) -> list[AuditEntry]:
    """The audit chain's entries on one subject (edits, links, bindings), newest first.

    Callers scope the subject; the entries are the subject's whole record, whoever made them.
    """
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT seq, at, actor, action, payload FROM audit_log"
            " WHERE entity = 'subject' AND entity_id = %s ORDER BY seq DESC LIMIT %s",
            (credit_code, limit),
        ).fetchall()
    return [AuditEntry(**{**r, "payload": orjson.loads(r["payload"])}) for r in rows]
