"""Creating, editing and deleting subjects inside a writing transaction, with their records."""

from __future__ import annotations

from datetime import datetime

from psycopg.types.json import Jsonb

from core.principal import Principal as Actor
from subjects import links, rows
from subjects.errors import SubjectConflictError, SubjectNotFoundError
from subjects.errors import SubjectRefusal as R
from subjects.models import ChangeKind, SubjectChanged
from subjects.schema import SubjectIn, SubjectOut, SubjectPatch
from subjects.transactions import Tx


def create(tx: Tx, data: SubjectIn, actor: Actor, now: datetime) -> None:
    """Create a subject supervised by the actor's department from `now`."""
    row = tx.conn.execute(
        "INSERT INTO subjects (credit_code, name, address, grid, industry,"
        " credit_scheme, credit_grade, risk_level, tags, attributes, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (credit_code) DO NOTHING RETURNING credit_code",
        (
            data.credit_code,
            data.name,
            data.address,
            data.grid,
            data.industry,
            data.scheme.value,
            data.credit_grade.value,
            data.risk_level.value,
            data.tags,
            Jsonb(data.attributes),
            now,
            now,
        ),
    ).fetchone()
    code = data.credit_code
    if row is None:
        if rows.get(tx.conn, code, actor.department) is not None:
            raise SubjectConflictError(R.SUBJECT_EXISTS, f"subject {code!r} already exists")
        raise SubjectConflictError(
            R.SUBJECT_ELSEWHERE,
            f"subject {code!r} is already in the library under other departments;"
            f" to supervise it too, POST /api/v1/subjects/{code}/departments",
        )
    link = links.insert(tx, code, actor.department, now, None, now)
    created = rows.get(tx.conn, code, None)
    assert created is not None
    tx.emit(SubjectChanged.by(actor, ChangeKind.CREATED, code, now, after=rows.snapshot(created)))
    tx.emit(links.change(ChangeKind.DEPARTMENT_LINKED, link, None, actor, now))


def update(tx: Tx, code: str, patch: SubjectPatch, actor: Actor, now: datetime) -> SubjectOut:
    """Change the fields `patch` gives (null coordinates clear the position); a no-op
    (nothing differs) records nothing."""
    changes = patch.model_dump(exclude_none=True, mode="json")
    if patch.clears_coordinates:
        changes.update(latitude=None, longitude=None)
    before = rows.get(tx.conn, code, actor.department, lock=True)
    if before is None:
        raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
    current = rows.snapshot(before)
    effective = {k: v for k, v in changes.items() if current.get(k) != v}
    if not effective:
        return before
    sets = ", ".join(f"{k} = %({k})s" for k in effective)
    params = {**effective, "code": code, "now": now}
    if "attributes" in params:
        params["attributes"] = Jsonb(params["attributes"])
    tx.conn.execute(
        f"UPDATE subjects SET {sets}, updated_at = %(now)s WHERE credit_code = %(code)s", params
    )
    after = rows.get(tx.conn, code, None)
    assert after is not None
    tx.emit(
        SubjectChanged.by(
            actor, ChangeKind.UPDATED, code, now, before=current, after=rows.snapshot(after)
        )
    )
    return after


def delete(tx: Tx, code: str, actor: Actor, now: datetime) -> None:
    """Delete a subject only its own department supervises (its links and bindings too)."""
    before = rows.get(tx.conn, code, actor.department, lock=True)
    if before is None:
        raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
    others = sorted(rows.supervisors(tx.conn, code, now) - {actor.department})
    if others:
        raise SubjectConflictError(
            R.SUBJECT_SHARED,
            f"subject {code!r} is also supervised by {', '.join(others)}; end your"
            f" department's supervision with DELETE /api/v1/subjects/{code}/departments/"
            f"{actor.department} instead",
            {"departments": ",".join(others)},
        )
    record = rows.snapshot(before)
    record["bindings"] = [
        {"device_id": d, "role": r, "point": p}
        for d, r, p in tx.conn.execute(
            "SELECT device_id, role, point FROM device_bindings WHERE credit_code = %s"
            " ORDER BY device_id",
            (code,),
        )
    ]
    tx.conn.execute("DELETE FROM subjects WHERE credit_code = %s", (code,))
    tx.emit(SubjectChanged.by(actor, ChangeKind.DELETED, code, now, before=record))
