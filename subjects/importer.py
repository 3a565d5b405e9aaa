"""Bulk import of subjects from CSV or JSON: every bad row reported, nothing half-imported."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from core.principal import Principal as Actor
from subjects.errors import SubjectConflictError, retired_reason
from subjects.import_report import (
    ATTRIBUTE_PREFIX,
    ImportFormat,
    ImportReason,
    ImportReport,
    RowError,
    reason_of,
)
from subjects.metrics import SubjectsMetrics
from subjects.models import ChangeKind, RiskLevel, SubjectChanged
from subjects.repository import SubjectRepository
from subjects.rows import snapshot
from subjects.schema import SubjectIn, SubjectOut, split_list

# ImportFormat, ImportReport and RowError are imported from here by the routers.
__all__ = ["ImportFormat", "ImportReport", "ImportTooLargeError", "RowError", "SubjectImporter"]

log = logging.getLogger(__name__)

COLUMNS = (
    "credit_code", "name", "address", "grid", "industry", "credit_scheme", "credit_grade",
    "risk_level", "tags", "departments",
)  # fmt: skip
REQUIRED = ("credit_code", "name")
# Headers as departments' spreadsheets write them.
ALIASES = {
    "统一社会信用代码": "credit_code", "信用代码": "credit_code", "code": "credit_code",
    "名称": "name", "主体名称": "name", "企业名称": "name", "单位名称": "name",
    "地址": "address", "注册地址": "address", "经营地址": "address",
    "网格": "grid", "所属网格": "grid", "行业": "industry", "所属行业": "industry",
    "信用等级": "credit_grade", "grade": "credit_grade", "环保信用等级": "credit_grade",
    "信用评价体系": "credit_scheme", "scheme": "credit_scheme", "风险等级": "risk_level",
    "risk": "risk_level", "标签": "tags", "监管部门": "departments",
}  # fmt: skip
RISK_ALIASES = {
    "低": RiskLevel.LOW, "低风险": RiskLevel.LOW,
    "一般": RiskLevel.GENERAL, "一般风险": RiskLevel.GENERAL,
    "较大": RiskLevel.CONSIDERABLE, "较大风险": RiskLevel.CONSIDERABLE,
    "重大": RiskLevel.MAJOR, "重大风险": RiskLevel.MAJOR,
}  # fmt: skip
FILE = "(file)"


class ImportTooLargeError(ValueError):
    """The body exceeds the configured import limits."""


@dataclass(slots=True)
class _Row:
    row: int
    line: int | None
    data: SubjectIn
    given: frozenset[str]
    departments: tuple[str, ...]


@dataclass(slots=True)
class _Raw:
    row: int
    line: int | None
    values: dict[str, Any]

    def error(
        self, column: str, code: ImportReason, reason: str, params: dict[str, str | int]
    ) -> RowError:
        """A problem of this record, placed where the sheet shows it."""
        return RowError(
            row=self.row, line=self.line, column=column, code=code, params=params, reason=reason
        )


@dataclass(slots=True)
class _Plan:
    creates: list[_Row] = field(default_factory=list)
    updates: list[tuple[_Row, SubjectOut, dict[str, Any]]] = field(default_factory=list)
    unchanged: int = 0
    links: list[tuple[str, str]] = field(default_factory=list)
    refused: list[RowError] = field(default_factory=list)


def _column(name: str) -> str:
    key = name.strip().lstrip("\ufeff")
    return ALIASES.get(key, key.lower() if not key.lower().startswith(ATTRIBUTE_PREFIX) else key)


def _known(column: str) -> bool:
    return column in COLUMNS or (
        column.startswith(ATTRIBUTE_PREFIX) and len(column) > len(ATTRIBUTE_PREFIX)
    )


class SubjectImporter:
    """Parses, validates every row, then writes all rows in one transaction or none."""

    def __init__(
        self,
        repository: SubjectRepository,
        metrics: SubjectsMetrics,
        max_rows: int = 50_000,
        max_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        self.repository = repository
        self.metrics = metrics
        self.max_rows = max_rows
        self.max_bytes = max_bytes

    def run(self, body: bytes, fmt: ImportFormat, actor: Actor, dry_run: bool) -> ImportReport:
        if len(body) > self.max_bytes:
            raise ImportTooLargeError(
                f"the import is {len(body)} bytes; at most {self.max_bytes} are accepted"
            )
        errors: list[RowError] = []
        raws = self._parse(body, fmt, errors)
        if len(raws) > self.max_rows:
            raise ImportTooLargeError(
                f"the import holds {len(raws)} rows; at most {self.max_rows} are accepted"
            )
        with self.repository.pool.connection() as conn:
            found = conn.execute("SELECT code, retired, replaced_by FROM departments").fetchall()
        # code -> None for a current department; a retired one: its successor ('' if none).
        departments = {c: (successor or "") if r else None for c, r, successor in found}
        rows = self._validate(raws, actor, departments, errors)
        report = ImportReport(
            format=fmt,
            dry_run=dry_run,
            committed=False,
            rows=len(raws),
            valid_rows=len(rows),
            errors=sorted(errors, key=lambda e: (e.row, e.column)),
        )
        self.metrics.import_rows.labels("invalid").inc(len({e.row for e in errors if e.row}))
        if errors or not raws:
            if not raws and not errors:
                report.errors.append(
                    RowError(row=0, column=FILE, code=R.NO_ROWS, reason="no rows to import")
                )
            self.metrics.imports.labels("dry_run" if dry_run else "rejected").inc()
            return report
        if dry_run:
            with self.repository.pool.connection() as conn:
                plan = self._plan(conn, rows, lock=False, actor=actor)
            report.errors += plan.refused
            self._count(report, plan)
            self.metrics.imports.labels("dry_run").inc()
            return report
        try:
            with self.repository.transaction() as tx:
                plan = self._plan(tx.conn, rows, lock=True, actor=actor)
                if plan.refused:
                    report.errors += plan.refused
                    self.metrics.imports.labels("rejected").inc()
                    return report
                for change in self._write(tx.conn, plan, actor):
                    tx.emit(change)
        except (psycopg.Error, SubjectConflictError) as err:
            log.warning("subject import rolled back: %s", err)
            report.errors.append(
                RowError(
                    row=0,
                    column="(database)",
                    code=R.ROLLED_BACK,
                    params={"detail": str(err)},
                    reason=f"rolled back, nothing imported: {err}",
                )
            )
            self.metrics.imports.labels("rejected").inc()
            return report
        self._count(report, plan)
        report.committed = True
        self.metrics.imports.labels("committed").inc()
        for result, n in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            self.metrics.import_rows.labels(result).inc(n)
        return report

    # -- parsing -----------------------------------------------------------------------

    def _parse(self, body: bytes, fmt: ImportFormat, errors: list[RowError]) -> list[_Raw]:
        if fmt is ImportFormat.CSV:
            return self._parse_csv(body, errors)
        return self._parse_json(body, errors)

    def _parse_csv(self, body: bytes, errors: list[RowError]) -> list[_Raw]:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            errors.append(
                RowError(
                    row=0,
                    column=FILE,
                    code=R.NOT_UTF8,
                    params={"byte": err.start},
                    reason=f"not UTF-8 at byte {err.start}; save the sheet as CSV UTF-8",
                )
            )
            return []
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            errors.append(
                RowError(row=0, column=FILE, code=R.EMPTY_FILE, reason="empty file: no header row")
            )
            return []
        except csv.Error as err:
            errors.append(_malformed(0, 1, FILE, f"malformed CSV: {err}", err))
            return []
        columns = [_column(h) for h in header]
        if not self._check_header(columns, errors):
            return []
        raws: list[_Raw] = []
        number = 0
        try:
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                number += 1
                if len(cells) != len(columns):
                    errors.append(
                        RowError(
                            row=number,
                            line=reader.line_num,
                            column="(row)",
                            code=R.CELL_COUNT,
                            params={"cells": len(cells), "header": len(columns)},
                            reason=f"has {len(cells)} cells, the header has {len(columns)}",
                        )
                    )
                    continue
                raws.append(_Raw(number, reader.line_num, dict(zip(columns, cells, strict=True))))
        except csv.Error as err:
            errors.append(
                _malformed(number + 1, reader.line_num, "(row)", f"malformed: {err}", err)
            )
        return raws

    def _parse_json(self, body: bytes, errors: list[RowError]) -> list[_Raw]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as err:
            errors.append(
                RowError(
                    row=0,
                    column=FILE,
                    code=R.NOT_JSON,
                    params={"detail": str(err)},
                    reason=f"not valid JSON: {err}",
                )
            )
            return []
        if isinstance(data, dict) and isinstance(data.get("subjects"), list):
            data = data["subjects"]
        if not isinstance(data, list):
            errors.append(
                RowError(
                    row=0,
                    column=FILE,
                    code=R.NOT_A_LIST,
                    reason='must be a list of subject objects or {"subjects": [...]}',
                )
            )
            return []
        raws: list[_Raw] = []
        for number, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                errors.append(
                    RowError(
                        row=number,
                        column="(row)",
                        code=R.ROW_NOT_OBJECT,
                        reason="must be an object",
                    )
                )
                continue
            values = {_column(str(k)): v for k, v in item.items()}
            unknown = [k for k in values if not _known(k) and k != "attributes"]
            for key in unknown:
                errors.append(_unknown(number, None, key))
            if not unknown:
                raws.append(_Raw(number, None, values))
        return raws

    def _check_header(self, columns: Sequence[str], errors: list[RowError]) -> bool:
        ok = True
        seen: set[str] = set()
        for column in columns:
            if not _known(column):
                errors.append(_unknown(0, 1, column))
                ok = False
            elif column in seen:
                errors.append(_in_header(column, R.DUPLICATE_COLUMN, "appears twice"))
                ok = False
            seen.add(column)
        for column in REQUIRED:
            if column not in seen:
                errors.append(_in_header(column, R.MISSING_COLUMN, "column is missing"))
                ok = False
        return ok

    # -- validation --------------------------------------------------------------------

    def _validate(
        self,
        raws: Sequence[_Raw],
        actor: Actor,
        departments: Mapping[str, str | None],
        errors: list[RowError],
    ) -> list[_Row]:
        rows: list[_Row] = []
        first_row: dict[str, int] = {}
        for raw in raws:
            before = len(errors)
            fields, depts = self._fields(raw, actor, departments, errors)
            try:
                data = SubjectIn.model_validate(fields)
            except ValidationError as err:
                for e in err.errors():
                    loc = [str(p) for p in e["loc"]]
                    column = loc[0] if loc else "(row)"
                    if column == "attributes" and len(loc) > 1:
                        column = ATTRIBUTE_PREFIX + loc[1]
                    reason = str(e["msg"]).removeprefix("Value error, ")
                    why, params = reason_of(column, e)
                    errors.append(raw.error(column, why, reason, params))
                continue
            if len(errors) > before:
                continue
            code = data.credit_code
            if code in first_row:
                errors.append(
                    raw.error(
                        "credit_code",
                        R.DUPLICATE_ROW,
                        f"{code} is also on row {first_row[code]}",
                        {"code": code, "row": first_row[code]},
                    )
                )
                continue
            first_row[code] = raw.row
            rows.append(_Row(raw.row, raw.line, data, frozenset(fields) - {"credit_code"}, depts))
        return rows

    def _fields(
        self,
        raw: _Raw,
        actor: Actor,
        departments: Mapping[str, str | None],
        errors: list[RowError],
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """Raw values as SubjectIn fields; an empty cell means "not given"."""
        fields: dict[str, Any] = {}
        attributes: dict[str, Any] = {}
        depts: list[str] = []

        def fail(column: str, code: ImportReason, reason: str, **params: str | int) -> None:
            errors.append(raw.error(column, code, reason, params))

        for column, value in raw.values.items():
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if column.startswith(ATTRIBUTE_PREFIX):
                attributes[column[len(ATTRIBUTE_PREFIX) :]] = (
                    value.strip() if isinstance(value, str) else value
                )
            elif column == "attributes":
                if not isinstance(value, dict):
                    fail(
                        column,
                        R.ATTRIBUTES_NOT_OBJECT,
                        'must be an object of numbers, e.g. {"permit.cod_mg_l": 50}',
                    )
                else:
                    attributes.update(value)
            elif column in ("tags", "departments"):
                items = _list(value)
                if items is None:
                    fail(column, R.NOT_A_LIST_CELL, "must be a list or a ';'-separated string")
                elif column == "tags":
                    fields["tags"] = items
                else:
                    depts = [d.upper() for d in items]
            elif column == "credit_scheme" and isinstance(value, str):
                fields[column] = value.strip().lower()
            elif column == "risk_level" and isinstance(value, str):
                text = value.strip()
                fields[column] = RISK_ALIASES.get(text, text.lower())
            else:
                fields[column] = value
        if attributes:
            fields["attributes"] = attributes
        if not depts:
            depts = [actor.department]
        for dept in depts:
            if dept not in departments:
                fail(
                    "departments",
                    R.UNKNOWN_DEPARTMENT,
                    f"{dept!r} is not a known department code",
                    department=dept,
                )
            elif (successor := departments[dept]) is not None:
                fail(
                    "departments",
                    R.RETIRED_DEPARTMENT,
                    retired_reason(dept, successor or None),
                    department=dept,
                    successor=successor or "—",
                )
            elif dept != actor.department and not actor.is_admin:
                fail(
                    "departments",
                    R.DEPARTMENT_NOT_ALLOWED,
                    f"an officer may import only for their own department {actor.department};"
                    f" {dept} needs an admin",
                    own=actor.department,
                    department=dept,
                )
        return fields, tuple(dict.fromkeys(depts))

    # -- writing -----------------------------------------------------------------------

    def _plan(
        self, conn: psycopg.Connection[Any], rows: Sequence[_Row], lock: bool, actor: Actor
    ) -> _Plan:
        codes = [r.data.credit_code for r in rows]
        existing = self.repository.fetch_many(conn, codes, lock=lock)
        linked = {
            (c, d)
            for c, d in conn.execute(
                "SELECT credit_code, department FROM subject_departments"
                " WHERE credit_code = ANY(%s) AND until IS NULL",
                (codes,),
            )
        }
        plan = _Plan()
        for row in rows:
            code = row.data.credit_code
            before = existing.get(code)
            if before is None:
                plan.creates.append(row)
            elif (
                before.departments
                and actor.department not in before.departments
                and not actor.is_platform_admin
            ):
                # Importing over a subject others supervise would be joining it without
                # their consent (and editing it): the row is refused.
                plan.refused.append(
                    RowError(
                        row=row.row,
                        line=row.line,
                        column="credit_code",
                        code=R.SUPERVISED_BY_OTHERS,
                        params={"code": code},
                        reason=f"{code} is supervised by other departments; ask to join with"
                        f" POST /api/v1/subjects/{code}/departments",
                    )
                )
                continue
            else:
                current = snapshot(before)
                given = set(row.given)
                if "credit_grade" in given:
                    # A grade brings its scheme along (SubjectIn derived it): updating only
                    # the grade across schemes would break the table's grade-in-scheme check.
                    given.add("credit_scheme")
                new = row.data.model_dump(mode="json", include=given)
                if "attributes" in new:
                    # attr.<key> cells add or overwrite keys; other attributes stay.
                    new["attributes"] = {**current["attributes"], **new["attributes"]}
                diff = {k: v for k, v in new.items() if current.get(k) != v}
                if diff:
                    plan.updates.append((row, before, diff))
                else:
                    plan.unchanged += 1
            plan.links += [(code, d) for d in row.departments if (code, d) not in linked]
        return plan

    def _write(
        self, conn: psycopg.Connection[Any], plan: _Plan, actor: Actor
    ) -> Iterator[SubjectChanged]:
        now = self.repository.clock()
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO subjects (credit_code, name, address, grid, industry,"
                " credit_scheme, credit_grade, risk_level, tags, attributes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        r.data.credit_code,
                        r.data.name,
                        r.data.address,
                        r.data.grid,
                        r.data.industry,
                        r.data.scheme.value,
                        r.data.credit_grade.value,
                        r.data.risk_level.value,
                        r.data.tags,
                        Jsonb(r.data.attributes),
                    )
                    for r in plan.creates
                ],
            )
            for row, _, diff in plan.updates:
                params = {**diff, "code": row.data.credit_code, "now": now}
                if "attributes" in params:
                    params["attributes"] = Jsonb(params["attributes"])
                sets = ", ".join(f"{k} = %({k})s" for k in diff)
                cur.execute(
                    f"UPDATE subjects SET {sets}, updated_at = %(now)s"
                    " WHERE credit_code = %(code)s",
                    params,
                )
            cur.executemany(
                "INSERT INTO subject_departments (credit_code, department, since)"
                " VALUES (%s, %s, %s)",
                [(c, d, now) for c, d in plan.links],
            )
        touched = [r.data.credit_code for r in plan.creates] + [
            r.data.credit_code for r, _, _ in plan.updates
        ]
        after = self.repository.fetch_many(conn, touched)

        def change(kind: ChangeKind, code: str, **kw: Any) -> SubjectChanged:
            return SubjectChanged.by(actor, kind, code, now, source="import", **kw)

        for row in plan.creates:
            code = row.data.credit_code
            yield change(ChangeKind.CREATED, code, after=snapshot(after[code]))
        for row, before, _ in plan.updates:
            code = row.data.credit_code
            yield change(
                ChangeKind.UPDATED, code, before=snapshot(before), after=snapshot(after[code])
            )
        for code, dept in plan.links:
            yield change(
                ChangeKind.DEPARTMENT_LINKED,
                code,
                after={"credit_code": code, "department": dept, "since": now.isoformat()},
                linked_department=dept,
            )

    @staticmethod
    def _count(report: ImportReport, plan: _Plan) -> None:
        report.created = len(plan.creates)
        report.updated = len(plan.updates)
        report.unchanged = plan.unchanged
        report.links_added = len(plan.links)


R = ImportReason


def _in_header(column: str, code: R, reason: str) -> RowError:
    """A problem of the header: row 0, the file's first line."""
    return RowError(row=0, line=1, column=column, code=code, reason=reason)


def _unknown(row: int, line: int | None, column: str) -> RowError:
    return RowError(
        row=row,
        line=line,
        column=column,
        code=R.UNKNOWN_COLUMN,
        params={"known": ", ".join(COLUMNS) + ", attr.<key>"},
        reason=f"unknown column; known: {', '.join(COLUMNS)}, attr.<key>",
    )


def _malformed(row: int, line: int | None, column: str, reason: str, err: Exception) -> RowError:
    return RowError(
        row=row,
        line=line,
        column=column,
        code=R.MALFORMED_CSV,
        params={"detail": str(err)},
        reason=reason,
    )


def _list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def content_format(content_type: str | None, explicit: str | None) -> ImportFormat | None:
    """The format named by `?format=` or else by the Content-Type header."""
    if explicit:
        try:
            return ImportFormat(explicit.lower())
        except ValueError:
            return None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("text/csv", "application/csv", "text/plain"):
        return ImportFormat.CSV
    if kind == "application/json" or kind.endswith("+json"):
        return ImportFormat.JSON
    return None
