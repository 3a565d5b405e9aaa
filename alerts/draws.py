"""Double-random draws (双随机): sampling by credit grade, and merging departments' draws."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from alerts import audit
from alerts.audit import canonical_json
from alerts.commit import finish
from alerts.dispatch import DispatchPlan, choose_lead, open_joint_task
from alerts.errors import DrawError, Refusal
from alerts.records import Changes, TaskKind, TaskRow
from alerts.routing import Router
from alerts.settings import AlertsSettings
from alerts.subjects_port import SubjectLookup, SubjectView
from core.principal import Principal
from rules.models import Severity
from subjects.models import Grade


@dataclass(frozen=True, slots=True)
class GradeShare:
    """One credit grade of a draw: how many subjects it has, the share drawn, who was drawn."""

    grade: Grade
    population: int
    ratio: float
    drawn: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DrawPreview:
    """What a sampled draw would pick now; submitting with the same seed stores exactly this
    while the department's subjects stay the same."""

    department: str
    seed: int
    population: int
    grades: tuple[GradeShare, ...]

    @property
    def codes(self) -> list[str]:
        return sorted(c for g in self.grades for c in g.drawn)


def sample_by_grade(
    subjects: Sequence[SubjectView],
    ratios: Mapping[Grade, float],
    rng: random.Random,
    due: Collection[str] = (),
) -> list[GradeShare]:
    """Draw ceil(n x ratio) subjects of each credit grade at random.

    Rounding up means a grade with any subjects and a positive ratio is never skipped.
    Subjects in `due` (past their grade's inspection frequency) are always drawn; they count
    toward their grade's share, and the rest of it is drawn at random from the others.
    """
    by_grade: dict[Grade, list[str]] = {}
    for s in subjects:
        by_grade.setdefault(s.credit_grade, []).append(s.credit_code)
    shares: list[GradeShare] = []
    for grade in sorted(by_grade):
        codes = sorted(set(by_grade[grade]))
        ratio = ratios.get(grade, 0.0)
        n = min(len(codes), math.ceil(len(codes) * ratio))
        forced = [c for c in codes if c in due]
        rest = [c for c in codes if c not in due]
        picked = forced + rng.sample(rest, max(0, min(len(rest), n - len(forced))))
        shares.append(GradeShare(grade, len(codes), ratio, tuple(sorted(picked))))
    return shares


def sample(
    subjects: Sequence[SubjectView],
    ratios: Mapping[Grade, float],
    rng: random.Random,
    due: Collection[str] = (),
) -> list[str]:
    """The credit codes sample_by_grade draws, sorted."""
    return sorted(c for share in sample_by_grade(subjects, ratios, rng, due) for c in share.drawn)


def preview(
    conn: psycopg.Connection[Any],
    subjects: SubjectLookup,
    settings: AlertsSettings,
    actor: Principal,
    seed: int,
    now: datetime,
) -> DrawPreview:
    """The sample `submit` would store for `seed`, by grade (with the subjects due by their
    grade's inspection frequency); nothing is written."""
    if actor.is_system:
        raise DrawError(Refusal.DRAW_NO_DEPARTMENT, "a draw belongs to a department")
    supervised = list(subjects.subjects_of(actor.department))
    if not supervised:
        raise DrawError(
            Refusal.DRAW_EMPTY_SCOPE, f"department: {actor.department} supervises no subjects"
        )
    every = {g: h.inspect_every_days for g, h in settings.credit_handling.items()}
    due = due_by_frequency(conn, supervised, every, now)
    shares = sample_by_grade(supervised, settings.draw_ratios, random.Random(seed), due)
    population = len({s.credit_code for s in supervised})
    return DrawPreview(actor.department, seed, population, tuple(shares))


def due_by_frequency(
    conn: psycopg.Connection[Any],
    subjects: Sequence[SubjectView],
    every_days: Mapping[Grade, float | None],
    now: datetime,
) -> list[str]:
    """Subjects whose grade sets an inspection frequency (检查频次) and that were neither drawn
    nor given an inspection task (remote, on-site or joint) within it; sorted codes."""
    window = {s.credit_code: every_days.get(s.credit_grade) for s in subjects}
    watched = {code: days for code, days in window.items() if days is not None}
    if not watched:
        return []
    last = dict(
        conn.execute(
            "SELECT code, max(at) FROM ("
            " SELECT credit_code AS code, created_at AS at FROM tasks WHERE credit_code = ANY(%s)"
            " UNION ALL SELECT s.credit_code, d.created_at FROM draw_subjects s"
            " JOIN draws d ON d.id = s.draw_id WHERE s.credit_code = ANY(%s)) seen GROUP BY code",
            (sorted(watched), sorted(watched)),
        ).fetchall()
    )
    return sorted(
        code
        for code, days in watched.items()
        if last.get(code) is None or last[code] <= now - timedelta(days=days)
    )


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


def submit(
    conn: psycopg.Connection[Any],
    subjects: SubjectLookup,
    settings: AlertsSettings,
    actor: Principal,
    period: str,
    codes: Sequence[str] | None,
    seed: int | None,
    now: datetime,
) -> tuple[int, list[str]]:
    """Store a department's draw: the codes it submits, or a sample by credit grade (with
    the subjects due by their grade's inspection frequency)."""
    ratios = settings.draw_ratios
    department = actor.department
    if department is None:
        raise DrawError(Refusal.DRAW_NO_DEPARTMENT, "a draw belongs to a department")
    supervised = {s.credit_code: s for s in subjects.subjects_of(department)}
    method: dict[str, Any]
    if codes is None:
        every = {g: h.inspect_every_days for g, h in settings.credit_handling.items()}
        due = due_by_frequency(conn, list(supervised.values()), every, now)
        chosen = sample(list(supervised.values()), ratios, random.Random(seed), due)
        method = {"kind": "sampled", "ratios": dict(ratios), "seed": seed,
                  "population": len(supervised), "due_by_frequency": due}  # fmt: skip
    else:
        unknown = sorted(set(codes) - supervised.keys())
        if unknown:
            raise DrawError(
                Refusal.DRAW_NOT_SUPERVISED,
                f"credit_codes: {department} does not supervise {', '.join(unknown[:10])}",
            )
        chosen, method = sorted(set(codes)), {"kind": "submitted"}
    with conn.transaction():
        draw_id = save(conn, department, period, chosen, actor.name, now, method)
        record = audit.AuditRecord(actor.name, "draw", str(draw_id), "draw.submitted",
                                   {"period": period, "department": department,
                                    "credit_codes": chosen, "method": method})  # fmt: skip
        audit.append(conn, [record], now)
    return draw_id, chosen


def merge(
    conn: psycopg.Connection[Any],
    subjects: SubjectLookup,
    settings: AlertsSettings,
    router: Router,
    actor: Principal,
    period: str,
    now: datetime,
) -> tuple[list[TaskRow], int]:
    """Subjects drawn by two or more departments become (or join) joint inspections."""
    changes = Changes()
    due_at = now + timedelta(days=settings.draw_due_days)
    tasks: list[TaskRow] = []
    with conn.transaction():
        # Only a department that drew in the period may start its merge: the others have
        # no say over which of their subjects are inspected jointly.
        drew = conn.execute(
            "SELECT 1 FROM draws WHERE period = %s AND department = %s LIMIT 1",
            (period, actor.department),
        ).fetchone()
        if drew is None:
            raise DrawError(
                Refusal.DRAW_NO_DRAW_IN_PERIOD,
                f"period: {actor.department} has no draw in {period!r}; only a department"
                " that drew in the period may merge it",
            )
        for code, departments in drawn_by_several(conn, period):
            subject = subjects.subject(code)
            lead, why = choose_lead(departments, subject, settings.lead_by_domain, {})
            plan = DispatchPlan(
                TaskKind.JOINT, lead, frozenset(departments), due_at, f"drawn; lead: {why}"
            )
            task, _ = open_joint_task(
                conn, code, code, plan, Severity.INFO, "draw", actor, now, changes, period
            )
            tasks.append(task)
        pending = finish(conn, changes, router, now)
    return tasks, pending


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """A stored draw as its department's history shows it."""

    id: int
    period: str
    created_at: datetime
    created_by: str
    method: dict[str, Any]
    credit_codes: list[str]


def history(conn: psycopg.Connection[Any], department: str, limit: int = 50) -> list[DrawRecord]:
    """The department's draws, newest first, with the subjects each drew."""
    with conn.cursor(row_factory=class_row(DrawRecord)) as cur:
        return cur.execute(
            "SELECT d.id, d.period, d.created_at, d.created_by, d.method,"
            " coalesce(array_agg(s.credit_code ORDER BY s.credit_code)"
            " FILTER (WHERE s.credit_code IS NOT NULL), '{}') AS credit_codes"
            " FROM draws d LEFT JOIN draw_subjects s ON s.draw_id = d.id"
            " WHERE d.department = %s GROUP BY d.id ORDER BY d.id DESC LIMIT %s",
            (department, limit),
        ).fetchall()


def joint_candidates(
    conn: psycopg.Connection[Any], department: str, period: str
) -> list[tuple[str, list[str]]]:
    """What a merge of `period` would make joint for `department`: its drawn subjects that
    other departments drew too, with all the departments that drew each."""
    return [(c, d) for c, d in drawn_by_several(conn, period) if department in d]
