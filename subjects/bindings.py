"""Device bindings: which subject a device watches, in which role, scoped like its subject."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core.principal import Principal as Actor
from subjects import rows
from subjects.errors import SubjectForbiddenError, SubjectNotFoundError
from subjects.errors import SubjectRefusal as R
from subjects.models import ChangeKind, SubjectChanged
from subjects.rows import SUBJECT_FROM, VISIBLE
from subjects.schema import BindingIn, BindingOut
from subjects.transactions import Tx

BINDING_COLUMNS = (
    "b.device_id, b.credit_code, s.name AS subject_name, b.role, b.point, b.since, b.updated_at"
)


def get(conn: psycopg.Connection[Any], device_id: str, lock: bool = False) -> BindingOut | None:
    """The device's binding, unscoped (callers scope by its subject)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {BINDING_COLUMNS} FROM device_bindings b JOIN subjects s USING (credit_code)"
            " WHERE b.device_id = %s" + (" FOR UPDATE OF b" if lock else ""),
            (device_id,),
        ).fetchone()
    return None if row is None else BindingOut(**row)


def _visible(conn: psycopg.Connection[Any], code: str, actor: Actor) -> bool:
    return actor.is_platform_admin or rows.get(conn, code, actor.department) is not None


def of_subject(
    conn: psycopg.Connection[Any], code: str, dept: str | None
) -> list[BindingOut] | None:
    """The subject's bindings by device id; None when `dept` does not see the subject.

    One query: the subject row (scoped) left-joined with its bindings, so "not visible"
    (no row) and "no devices" (one row of NULLs) stay apart.
    """
    sql = (
        f"SELECT s.credit_code AS subject_code, {BINDING_COLUMNS} FROM {SUBJECT_FROM}"
        " LEFT JOIN device_bindings b ON b.credit_code = s.credit_code"
        " WHERE s.credit_code = %(code)s"
    )
    if dept is not None:
        sql += " AND " + VISIBLE
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(sql + " ORDER BY b.device_id", {"code": code, "dept": dept}).fetchall()
    if not found:
        return None
    return [
        BindingOut(**{k: v for k, v in r.items() if k != "subject_code"})
        for r in found
        if r["device_id"] is not None
    ]


def of_department(
    conn: psycopg.Connection[Any], dept: str | None, limit: int, offset: int
) -> tuple[int, list[BindingOut]]:
    """The devices bound to subjects `dept` supervises now (every bound device when None),
    by device id, one page of them, and how many there are in all."""
    where = f" WHERE {VISIBLE}" if dept is not None else ""
    sql = f"FROM device_bindings b JOIN {SUBJECT_FROM} ON s.credit_code = b.credit_code{where}"
    params = {"dept": dept, "limit": limit, "offset": offset}
    total = conn.execute(f"SELECT count(*) {sql}", params).fetchone()
    with conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            f"SELECT {BINDING_COLUMNS} {sql}"
            " ORDER BY b.device_id LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
    return (int(total[0]) if total else 0), [BindingOut(**r) for r in found]


def bind(tx: Tx, device_id: str, data: BindingIn, actor: Actor, now: datetime) -> BindingOut:
    """Bind (or re-bind) a device; both its old and its new subject must be the actor's.

    Only the platform admin binds a device that is bound to nothing yet, to any subject.
    """
    if rows.get(tx.conn, data.credit_code, actor.scope, lock=True) is None:
        raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {data.credit_code!r} not found")
    before = get(tx.conn, device_id, lock=True)
    if before is None and not actor.is_platform_admin:
        raise SubjectForbiddenError(
            R.NEW_DEVICE_PLATFORM_ONLY,
            f"device {device_id!r} is bound to no subject yet: binding a new device is"
            " the platform admin's job (平台管理员)",
            {"device": device_id},
        )
    if before is not None and not _visible(tx.conn, before.credit_code, actor):
        # Bound to a subject of another department: as invisible as its subject.
        raise SubjectNotFoundError(
            R.DEVICE_NOT_VISIBLE,
            f"device {device_id!r} is not bindable by {actor.department}",
            {"device": device_id},
        )
    if before is not None and (before.credit_code, before.role, before.point) == (
        data.credit_code,
        data.role,
        data.point,
    ):
        return before
    tx.conn.execute(
        "INSERT INTO device_bindings (device_id, credit_code, role, point, since, updated_at)"
        " VALUES (%(device)s, %(code)s, %(role)s, %(point)s, %(now)s, %(now)s)"
        " ON CONFLICT (device_id) DO UPDATE SET"
        " credit_code = excluded.credit_code, role = excluded.role,"
        " point = excluded.point, updated_at = excluded.updated_at,"
        " since = CASE WHEN device_bindings.credit_code = excluded.credit_code"
        " THEN device_bindings.since ELSE excluded.since END",
        {"device": device_id, "code": data.credit_code, "role": data.role,
         "point": data.point, "now": now},
    )  # fmt: skip
    after = get(tx.conn, device_id)
    assert after is not None
    if before is not None and before.credit_code != data.credit_code:
        tx.emit(change(ChangeKind.DEVICE_UNBOUND, before, None, actor, now))
        before = None
    tx.emit(change(ChangeKind.DEVICE_BOUND, after, before, actor, now))
    return after


def unbind(tx: Tx, device_id: str, actor: Actor, now: datetime) -> BindingOut:
    before = get(tx.conn, device_id, lock=True)
    if before is None or not _visible(tx.conn, before.credit_code, actor):
        raise SubjectNotFoundError(
            R.DEVICE_NOT_BOUND, f"device {device_id!r} has no binding", {"device": device_id}
        )
    tx.conn.execute("DELETE FROM device_bindings WHERE device_id = %s", (device_id,))
    tx.emit(change(ChangeKind.DEVICE_UNBOUND, before, None, actor, now))
    return before


def visible(conn: psycopg.Connection[Any], device_id: str, actor: Actor) -> BindingOut | None:
    """The device's binding if the actor sees its subject."""
    found = get(conn, device_id)
    if found is None or not _visible(conn, found.credit_code, actor):
        return None
    return found


def change(
    kind: ChangeKind,
    binding: BindingOut,
    before: BindingOut | None,
    actor: Actor,
    at: datetime,
) -> SubjectChanged:
    """The record of a device bound or unbound."""
    record = binding.model_dump(mode="json")
    return SubjectChanged.by(
        actor,
        kind,
        binding.credit_code,
        at,
        before=record if kind is ChangeKind.DEVICE_UNBOUND else (
            None if before is None else before.model_dump(mode="json")
        ),
        after=None if kind is ChangeKind.DEVICE_UNBOUND else record,
        device_id=binding.device_id,
    )  # fmt: skip
