"""Double-random draws (双随机): sampling by credit grade, and merging departments' draws."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.audit import canonical_json
from alerts.subjects_port import SubjectView
from subjects.models import CreditGrade


def sample(
    subjects: Sequence[SubjectView], ratios: Mapping[CreditGrade, float], rng: random.Random
) -> list[str]:
    """Draw ceil(n x ratio) subjects of each credit grade at random; sorted credit codes.

    Rounding up means a grade with any subjects and a positive ratio is never skipped.
    """
    by_grade: dict[CreditGrade, list[str]] = {}
    for s in subjects:
        by_grade.setdefault(s.credit_grade, []).append(s.credit_code)
    drawn: list[str] = []
    for grade in sorted(by_grade):
        codes = sorted(set(by_grade[grade]))
        n = min(len(codes), math.ceil(len(codes) * ratios.get(grade, 0.0)))
        drawn += rng.sample(codes, n)
    return sorted(drawn)


def save(
    conn: psycopg.Connection[Any],
    department: str,
    period: str,
    codes: Sequence[str],
    actor: str,
    now: datetime,
    method: dict[str, Any],
) -> int:
    row = conn.execute(
        "INSERT INTO draws (department, period, created_at, created_by, method)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (department, period, now, actor, Jsonb(method, dumps=canonical_json)),
    ).fetchone()
    assert row is not None
    draw_id = int(row[0])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO draw_subjects (draw_id, credit_code) VALUES (%s, %s)"
            " ON CONFLICT DO NOTHING",
            [(draw_id, c) for c in codes],
        )
    return draw_id


def drawn_by_several(conn: psycopg.Connection[Any], period: str) -> list[tuple[str, list[str]]]:
    """Subjects drawn in `period` by two or more departments, with those departments."""
    rows = conn.execute(
        "SELECT s.credit_code, array_agg(DISTINCT d.department ORDER BY d.department)"
        " FROM draws d JOIN draw_subjects s ON s.draw_id = d.id WHERE d.period = %s"
        " GROUP BY s.credit_code HAVING count(DISTINCT d.department) >= 2"
        " ORDER BY s.credit_code",
        (period,),
    ).fetchall()
    return [(str(r[0]), list(r[1])) for r in rows]
