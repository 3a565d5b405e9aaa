"""Supervision periods (department links) and requests to join a subject, with consent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.clock import aware
from core.principal import Principal as Actor
from subjects import rows
from subjects.errors import (
    SubjectConflictError,
    SubjectInvalidError,
    SubjectNotFoundError,
    retired_reason,
)
from subjects.errors import SubjectRefusal as R
from subjects.models import ChangeKind, SubjectChanged
from subjects.queries import current_period
from subjects.rows import CURRENT_LINK
from subjects.schema import LinkIn, LinkOut, LinkRequestOut, LinkRequestState
from subjects.transactions import Tx

# A period may start this much before the server's clock (a client's clock runs behind).
PAST_TOLERANCE = timedelta(minutes=1)
REQUEST_COLUMNS = (
    "id, credit_code, department, since, until, state, requested_by, requested_at,"
    " decided_by, decided_department, decided_at, reason"
)
LINK_COLUMNS = f"id, credit_code, department, since, until, ({CURRENT_LINK}) AS current"


def _request_out(row: Mapping[str, Any]) -> LinkRequestOut:
    return LinkRequestOut(**row)


def _aware(t: datetime | None, name: str) -> datetime | None:
    return aware(t, name, lambda n, why: SubjectInvalidError(n, why, R.TIME_WITHOUT_OFFSET))


def periods(conn: psycopg.Connection[Any], code: str, now: datetime) -> list[LinkOut]:
    """Every supervision period of the subject, current and past (callers scope it)."""
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            f"SELECT {LINK_COLUMNS} FROM subject_departments WHERE credit_code = %(code)s"
            " ORDER BY since, id",
            {"code": code, "now": now},
        ).fetchall()
    return [LinkOut(**r) for r in found]


def link(tx: Tx, code: str, data: LinkIn, actor: Actor, now: datetime) -> LinkOut | LinkRequestOut:
    """Start a supervision period, or ask for one (see SubjectRepository.link)."""
    dept = data.department.strip().upper()
    since = _aware(data.since, "since")
    if since is not None and since < now - PAST_TOLERANCE:
        raise SubjectInvalidError(
            "since",
            "must not be in the past: a supervision period starts now or later",
            R.SINCE_IN_PAST,
        )
    until = _aware(data.until, "until")
    if until is not None and until <= (since or now):
        raise SubjectInvalidError(
            "until", "must be later than since (and than now)", R.UNTIL_NOT_AFTER
        )
    exists = tx.conn.execute(
        "SELECT 1 FROM subjects WHERE credit_code = %s FOR UPDATE", (code,)
    ).fetchone()
    current = rows.get(tx.conn, code, None)
    ours = current is not None and actor.department in current.departments
    if exists is None or (dept != actor.department and not ours and not actor.is_platform_admin):
        raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
    if dept != actor.department and not (actor.is_admin or actor.is_platform_admin):
        raise SubjectInvalidError(
            "department",
            f"an officer may link only their own department {actor.department};"
            " linking another department needs the admin role",
            R.OWN_DEPARTMENT_ONLY,
            {"own": actor.department, "department": dept},
        )
    _check_linkable(tx.conn, code, dept)
    others = rows.supervisors(tx.conn, code, now) - {dept}
    if others and not ours and not actor.is_platform_admin:
        return _request(tx, code, dept, since, until, actor, now)
    made = insert(tx, code, dept, since or now, until, now)
    tx.emit(change(ChangeKind.DEPARTMENT_LINKED, made, None, actor, now))
    return made


def _check_linkable(conn: psycopg.Connection[Any], code: str, dept: str) -> None:
    known = conn.execute(
        "SELECT retired, replaced_by FROM departments WHERE code = %s", (dept,)
    ).fetchone()
    if known is None:
        raise SubjectInvalidError(
            "department",
            f"{dept!r} is not a known department code",
            R.DEPARTMENT_UNKNOWN,
            {"department": dept},
        )
    if known[0]:
        raise SubjectInvalidError(
            "department",
            retired_reason(dept, known[1]),
            R.DEPARTMENT_RETIRED,
            {"department": dept, "successor": known[1] or "—"},
        )
    open_link = conn.execute(
        "SELECT since FROM subject_departments WHERE credit_code = %s"
        " AND department = %s AND until IS NULL",
        (code, dept),
    ).fetchone()
    if open_link is not None:
        raise SubjectConflictError(
            R.ALREADY_SUPERVISES,
            f"{dept} already supervises {code} since {open_link[0].isoformat()}",
            {"department": dept},
        )


def _request(
    tx: Tx,
    code: str,
    dept: str,
    since: datetime | None,
    until: datetime | None,
    actor: Actor,
    now: datetime,
) -> LinkRequestOut:
    pending = tx.conn.execute(
        "SELECT id FROM subject_link_requests WHERE credit_code = %s AND department = %s"
        " AND state = 'pending'",
        (code, dept),
    ).fetchone()
    if pending is not None:
        raise SubjectConflictError(
            R.ALREADY_REQUESTED,
            f"{dept} has already asked to supervise {code} (request {pending[0]}); it waits"
            " for a supervising department to approve it",
            {"department": dept, "request": pending[0]},
        )
    with tx.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO subject_link_requests (credit_code, department, since, until,"
            f" requested_by, requested_at) VALUES (%s, %s, %s, %s, %s, %s)"
            f" RETURNING {REQUEST_COLUMNS}",
            (code, dept, since, until, actor.name, now),
        ).fetchone()
    assert row is not None
    request = _request_out(row)
    tx.emit(_request_change(ChangeKind.LINK_REQUESTED, request, actor, now))
    return request


def _request_change(
    kind: ChangeKind, request: LinkRequestOut, actor: Actor, at: datetime
) -> SubjectChanged:
    return SubjectChanged.by(
        actor,
        kind,
        request.credit_code,
        at,
        after=request.model_dump(mode="json"),
        linked_department=request.department,
    )


def requests(
    conn: psycopg.Connection[Any],
    actor: Actor,
    now: datetime,
    state: LinkRequestState | None = None,
    code: str | None = None,
) -> list[LinkRequestOut]:
    """Requests the actor's department made, and those on subjects it supervises now."""
    current = current_period("sd", now="%(now)s")
    sql = (
        f"SELECT {REQUEST_COLUMNS} FROM subject_link_requests r WHERE (%(platform)s"
        " OR r.department = %(dept)s OR EXISTS (SELECT 1 FROM subject_departments sd"
        f" WHERE sd.credit_code = r.credit_code AND sd.department = %(dept)s AND {current}))"
    )
    params: dict[str, Any] = {
        "platform": actor.is_platform_admin,
        "dept": actor.department,
        "now": now,
    }
    if state is not None:
        sql += " AND r.state = %(state)s"
        params["state"] = state.value
    if code is not None:
        sql += " AND r.credit_code = %(code)s"
        params["code"] = code
    sql += " ORDER BY r.requested_at DESC, r.id DESC LIMIT 500"
    with conn.cursor(row_factory=dict_row) as cur:
        return [_request_out(r) for r in cur.execute(sql, params)]


def _decidable(tx: Tx, request_id: int, actor: Actor) -> LinkRequestOut:
    with tx.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {REQUEST_COLUMNS} FROM subject_link_requests WHERE id = %s FOR UPDATE",
            (request_id,),
        ).fetchone()
    if row is None:
        raise SubjectNotFoundError(R.REQUEST_NOT_FOUND, f"link request {request_id} not found")
    request = _request_out(row)
    current = rows.get(tx.conn, request.credit_code, None, lock=True)
    supervises = current is not None and actor.department in current.departments
    if not (supervises or actor.is_platform_admin):
        raise SubjectNotFoundError(R.REQUEST_NOT_FOUND, f"link request {request_id} not found")
    if not (actor.is_admin or actor.is_platform_admin):
        raise SubjectInvalidError(
            "role",
            "deciding a link request needs the admin role of a supervising department",
            R.DECIDE_NEEDS_ADMIN,
        )
    if request.state is not LinkRequestState.PENDING:
        raise SubjectConflictError(
            R.REQUEST_DECIDED,
            f"link request {request_id} was already {request.state.value}",
            {"state": request.state.value},
        )
    return request


def _decide(
    tx: Tx,
    request: LinkRequestOut,
    state: LinkRequestState,
    reason: str,
    actor: Actor,
    now: datetime,
) -> LinkRequestOut:
    with tx.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "UPDATE subject_link_requests SET state = %s, decided_by = %s,"
            " decided_department = %s, decided_at = %s, reason = %s WHERE id = %s"
            f" RETURNING {REQUEST_COLUMNS}",
            (state.value, actor.name, actor.department, now, reason, request.id),
        ).fetchone()
    assert row is not None
    return _request_out(row)


def approve(tx: Tx, request_id: int, reason: str, actor: Actor, now: datetime) -> LinkOut:
    """Consent to a pending request: the department supervises from its asked start."""
    request = _decidable(tx, request_id, actor)
    since = max(request.since or now, now)
    if request.until is not None and request.until <= since:
        raise SubjectConflictError(
            R.REQUEST_PERIOD_OVER,
            f"link request {request_id} asked for a period that has already ended",
        )
    _check_linkable(tx.conn, request.credit_code, request.department)
    _decide(tx, request, LinkRequestState.APPROVED, reason, actor, now)
    made = insert(tx, request.credit_code, request.department, since, request.until, now)
    tx.emit(change(ChangeKind.DEPARTMENT_LINKED, made, None, actor, now))
    return made


def refuse(tx: Tx, request_id: int, reason: str, actor: Actor, now: datetime) -> LinkRequestOut:
    request = _decide(
        tx, _decidable(tx, request_id, actor), LinkRequestState.REFUSED, reason, actor, now
    )
    tx.emit(_request_change(ChangeKind.LINK_REFUSED, request, actor, now))
    return request


def end(tx: Tx, code: str, department: str, actor: Actor, now: datetime) -> LinkOut:
    """End the open supervision period of `department` now (a future one is withdrawn).

    A department ends only its own supervision; only the platform admin ends another's.
    """
    dept = department.strip().upper()
    if rows.get(tx.conn, code, actor.scope, lock=True) is None:
        raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
    if dept != actor.department and not actor.is_platform_admin:
        raise SubjectInvalidError(
            "department",
            f"a department may end only its own supervision ({actor.department});"
            f" {dept} ends its own",
            R.END_OWN_ONLY,
            {"own": actor.department, "department": dept},
        )
    with tx.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {LINK_COLUMNS} FROM subject_departments"
            " WHERE credit_code = %(code)s AND department = %(dept)s"
            " AND (until IS NULL OR until > %(now)s) ORDER BY since DESC LIMIT 1 FOR UPDATE",
            {"code": code, "dept": dept, "now": now},
        ).fetchone()
    if row is None:
        raise SubjectNotFoundError(
            R.NO_OPEN_PERIOD, f"{dept} has no open supervision of {code}", {"department": dept}
        )
    before = LinkOut(**row)
    if before.since >= now:
        tx.conn.execute("DELETE FROM subject_departments WHERE id = %s", (before.id,))
        after = before.model_copy(update={"until": before.since, "current": False})
    else:
        tx.conn.execute("UPDATE subject_departments SET until = %s WHERE id = %s", (now, before.id))
        after = before.model_copy(update={"until": now, "current": False})
    tx.emit(change(ChangeKind.DEPARTMENT_UNLINKED, after, before, actor, now))
    return after


def insert(
    tx: Tx, code: str, dept: str, since: datetime, until: datetime | None, now: datetime
) -> LinkOut:
    """A new supervision period, as stored."""
    with tx.conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "INSERT INTO subject_departments (credit_code, department, since, until)"
            f" VALUES (%(code)s, %(dept)s, %(since)s, %(until)s) RETURNING {LINK_COLUMNS}",
            {"code": code, "dept": dept, "since": since, "until": until, "now": now},
        ).fetchone()
    assert row is not None
    return LinkOut(**row)


def change(
    kind: ChangeKind, made: LinkOut, before: LinkOut | None, actor: Actor, at: datetime
) -> SubjectChanged:
    """The record of a link started or ended."""
    return SubjectChanged.by(
        actor,
        kind,
        made.credit_code,
        at,
        before=None if before is None else before.model_dump(mode="json"),
        after=made.model_dump(mode="json"),
        linked_department=made.department,
    )
