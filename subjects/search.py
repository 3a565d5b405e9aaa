"""Search of the library: filters, order and paging over the subjects a department sees."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from subjects.errors import SubjectInvalidError, SubjectRefusal
from subjects.models import Grade, RiskLevel
from subjects.rows import SUBJECT_COLUMNS, SUBJECT_FROM, VISIBLE, like, subject_out
from subjects.schema import SubjectPage


@dataclass(frozen=True, slots=True)
class SubjectQuery:
    """Search filters; list filters match any of their values, `tags` must all be present."""

    q: str | None = None
    credit_code: str | None = None
    name: str | None = None
    grid: tuple[str, ...] = ()
    industry: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    grades: tuple[Grade, ...] = ()
    risk_levels: tuple[RiskLevel, ...] = ()
    departments: tuple[str, ...] = ()
    cross_department: bool | None = None
    order: str = "credit_code"
    limit: int = 100
    offset: int = 0


ORDERS = {"credit_code": "s.credit_code", "name": "s.name, s.credit_code",
          "updated_at": "s.updated_at DESC, s.credit_code"}  # fmt: skip


def search(conn: psycopg.Connection[Any], query: SubjectQuery, dept: str | None) -> SubjectPage:
    """The page of subjects `dept` supervises now that match `query` (every subject in the
    library when `dept` is None: the platform admin's view, which binds devices to any)."""
    where = [VISIBLE if dept is not None else "true"]
    params: dict[str, Any] = {"dept": dept}
    if query.q:
        where.append("(s.credit_code LIKE %(q_code)s OR lower(s.name) LIKE %(q_name)s)")
        params["q_code"] = like(query.q.strip().upper()) + "%"
        params["q_name"] = "%" + like(query.q.strip().lower()) + "%"
    if query.credit_code:
        where.append("s.credit_code = %(code)s")
        params["code"] = query.credit_code.strip().upper()
    if query.name:
        where.append("lower(s.name) LIKE %(name)s")
        params["name"] = "%" + like(query.name.strip().lower()) + "%"
    for column, values in (
        ("grid", query.grid),
        ("industry", query.industry),
        ("credit_grade", tuple(g.value for g in query.grades)),
        ("risk_level", tuple(r.value for r in query.risk_levels)),
    ):
        if values:
            where.append(f"s.{column} = ANY(%({column})s)")
            params[column] = list(values)
    if query.tags:
        where.append("s.tags @> %(tags)s::text[]")
        params["tags"] = list(query.tags)
    if query.departments:
        where.append("COALESCE(d.departments, '{}') @> %(departments)s::text[]")
        params["departments"] = list(query.departments)
    if query.cross_department is not None:
        op = ">=" if query.cross_department else "<"
        where.append(f"cardinality(COALESCE(d.departments, '{{}}')) {op} 2")
    order = ORDERS.get(query.order)
    if order is None:
        raise SubjectInvalidError(
            "order", f"must be one of {', '.join(ORDERS)}", SubjectRefusal.ORDER_UNKNOWN
        )
    cond = " AND ".join(where)
    total_row = conn.execute(f"SELECT count(*) FROM {SUBJECT_FROM} WHERE {cond}", params).fetchone()
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE {cond}"
            f" ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": query.limit, "offset": query.offset},
        ).fetchall()
    return SubjectPage(
        total=total_row[0] if total_row else 0,
        limit=query.limit,
        offset=query.offset,
        items=[subject_out(r) for r in rows],
    )
