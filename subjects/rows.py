"""How a subject row is read: its columns, the department scope, the typed record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from subjects.credit import parse_grade
from subjects.models import CreditScheme, RiskLevel
from subjects.queries import current_period
from subjects.schema import SubjectOut

# attributes as text: orjson parses it several times faster than psycopg's stdlib loader.
SUBJECT_COLUMNS = (
    "s.credit_code, s.name, s.address, s.grid, s.industry, s.credit_grade, s.risk_level,"
    " s.tags, s.attributes::text AS attributes, s.created_at, s.updated_at,"
    " COALESCE(d.departments, '{}') AS departments, s.credit_scheme, s.latitude, s.longitude"
)
# Departments supervising now come from the view, the one definition of "current".
SUBJECT_FROM = (
    "subjects s LEFT JOIN LATERAL (SELECT v.departments FROM subject_current_departments v"
    " WHERE v.credit_code = s.credit_code) d ON true"
)
VISIBLE = "%(dept)s = ANY(COALESCE(d.departments, '{}'))"
# A link current at %(now)s (the command's clock); the view above uses the database's now().
CURRENT_LINK = current_period(now="%(now)s")


def subject_out(row: Mapping[str, Any]) -> SubjectOut:
    departments = list(row["departments"])
    return SubjectOut(
        credit_code=row["credit_code"],
        name=row["name"],
        address=row["address"],
        grid=row["grid"],
        industry=row["industry"],
        credit_scheme=CreditScheme(row["credit_scheme"]),
        credit_grade=parse_grade(row["credit_grade"]),
        risk_level=RiskLevel(row["risk_level"]),
        tags=list(row["tags"]),
        attributes={k: float(v) for k, v in orjson.loads(row["attributes"]).items()},
        latitude=row["latitude"],
        longitude=row["longitude"],
        departments=departments,
        cross_department=len(departments) >= 2,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def snapshot(subject: SubjectOut) -> dict[str, Any]:
    """JSON-ready record of a subject for the audit chain."""
    return subject.model_dump(mode="json")


def like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get(
    conn: psycopg.Connection[Any], code: str, dept: str | None, lock: bool = False
) -> SubjectOut | None:
    """The subject if `dept` supervises it now (any subject when `dept` is None)."""
    sql = f"SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE s.credit_code = %(code)s"
    if dept is not None:
        sql += " AND " + VISIBLE
    if lock:
        sql += " FOR UPDATE OF s"
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql, {"code": code, "dept": dept}).fetchone()
    return None if row is None else subject_out(row)


def fetch_many(
    conn: psycopg.Connection[Any], codes: Sequence[str], lock: bool = False
) -> dict[str, SubjectOut]:
    """Subjects by code, unscoped (callers scope), optionally locked for update."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE s.credit_code = ANY(%s)"
            + (" ORDER BY s.credit_code FOR UPDATE OF s" if lock else ""),
            (list(codes),),
        ).fetchall()
    return {r["credit_code"]: subject_out(r) for r in rows}


def supervisors(conn: psycopg.Connection[Any], code: str, now: datetime) -> set[str]:
    """Departments supervising the subject now or from a set future time."""
    rows = conn.execute(
        "SELECT DISTINCT department FROM subject_departments"
        " WHERE credit_code = %s AND (until IS NULL OR until > %s)",
        (code, now),
    )
    return {r[0] for r in rows}
