"""Credit grade history: every change of a subject's grade or scheme, kept and listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import dict_row

from subjects.credit import parse_grade
from subjects.models import ChangeKind, CreditScheme, Grade, SubjectChanged


class CreditSource(StrEnum):
    """Where a grade came from."""

    CREATE = "create"  # the subject was created with it
    EDIT = "edit"  # changed in the page or over the API
    IMPORT = "import"  # a CSV or JSON import
    MIGRATION = "migration"  # on record when the history began


@dataclass(frozen=True, slots=True)
class CreditChange:
    credit_code: str
    credit_scheme: CreditScheme
    credit_grade: Grade
    previous_scheme: CreditScheme | None
    previous_grade: Grade | None
    changed_by: str
    department: str
    source: CreditSource
    changed_at: datetime


def _pair(record: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if record is None:
        return None
    return str(record["credit_scheme"]), str(record["credit_grade"])


def record(conn: psycopg.Connection[Any], change: SubjectChanged) -> None:
    """Append a history row when `change` gave the subject a grade or changed it.

    Called inside the editing transaction (subjects.transactions), so the history commits
    with the edit: page, API and import all pass through it.
    """
    if change.kind not in (ChangeKind.CREATED, ChangeKind.UPDATED):
        return
    after, before = _pair(change.after), _pair(change.before)
    if after is None or after == before:
        return
    if change.source == "import":
        source = CreditSource.IMPORT
    else:
        source = CreditSource.CREATE if change.kind is ChangeKind.CREATED else CreditSource.EDIT
    conn.execute(
        "INSERT INTO subject_credit_history (credit_code, credit_scheme, credit_grade,"
        " previous_scheme, previous_grade, changed_by, department, source, changed_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            change.credit_code,
            *after,
            *(before or (None, None)),
            change.actor,
            change.department,
            source.value,
            change.at,
        ),
    )


def history(conn: psycopg.Connection[Any], code: str, limit: int = 200) -> list[CreditChange]:
    """The subject's grade changes, newest first (callers scope the subject)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT credit_code, credit_scheme, credit_grade, previous_scheme, previous_grade,"
            " changed_by, department, source, changed_at FROM subject_credit_history"
            " WHERE credit_code = %s ORDER BY changed_at DESC, id DESC LIMIT %s",
            (code, limit),
        ).fetchall()
    return [
        CreditChange(
            credit_code=r["credit_code"],
            credit_scheme=CreditScheme(r["credit_scheme"]),
            credit_grade=parse_grade(r["credit_grade"]),
            previous_scheme=CreditScheme(r["previous_scheme"]) if r["previous_scheme"] else None,
            previous_grade=parse_grade(r["previous_grade"]) if r["previous_grade"] else None,
            changed_by=r["changed_by"],
            department=r["department"],
            source=CreditSource(r["source"]),
            changed_at=r["changed_at"],
        )
        for r in rows
    ]
