"""Reads and writes of subjects, department links and device bindings, scoped to a department."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from subjects.credit import parse_grade
from subjects.metrics import SubjectsMetrics
from subjects.models import ChangeKind, CreditScheme, Grade, RiskLevel, SubjectChanged
from subjects.queries import current_period
from subjects.schema import (
    BindingIn,
    BindingOut,
    LinkIn,
    LinkOut,
    LinkRequestOut,
    LinkRequestState,
    SubjectIn,
    SubjectOut,
    SubjectPage,
    SubjectPatch,
)

log = logging.getLogger(__name__)

# Runs inside the writing transaction with its connection, so an audit row appended there
# commits (or rolls back) together with the edit; raising aborts the edit.
ChangeHook = Callable[[SubjectChanged, psycopg.Connection[Any]], None]
# Runs after commit with every change of the transaction (cache invalidation).
ChangeListener = Callable[[Sequence[SubjectChanged]], None]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who edits: `department` scopes everything; admins may link other departments.

    `platform` is the city platform's operator: it sees every subject's links and may link,
    approve and end supervision for any department (it has no subjects of its own).
    """

    department: str
    name: str
    admin: bool = False
    # The city platform's operator: binds new devices to any department's subject.
    platform: bool = False

    @property
    def scope(self) -> str | None:
        """The department binding lookups are limited to; None for the platform admin."""
        return None if self.platform else self.department


class SubjectError(Exception):
    """Base of the library's refusals; the message is meant for the caller."""


class SubjectNotFoundError(SubjectError):
    """Unknown, or supervised only by other departments (the two look the same on purpose)."""


class SubjectForbiddenError(SubjectError):
    """The actor's role may not do this (e.g. bind a new device: the platform admin's job)."""


class SubjectConflictError(SubjectError):
    """The edit clashes with the current state (exists already, linked already, shared)."""


class SubjectInvalidError(SubjectError):
    """A value breaks a rule; `field` names it."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


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

# attributes as text: orjson parses it several times faster than psycopg's stdlib loader.
SUBJECT_COLUMNS = (
    "s.credit_code, s.name, s.address, s.grid, s.industry, s.credit_grade, s.risk_level,"
    " s.tags, s.attributes::text, s.created_at, s.updated_at, COALESCE(d.departments, '{}'),"
    " s.credit_scheme"
)
# Departments supervising now come from the view, the one definition of "current".
SUBJECT_FROM = (
    "subjects s LEFT JOIN LATERAL (SELECT v.departments FROM subject_current_departments v"
    " WHERE v.credit_code = s.credit_code) d ON true"
)
VISIBLE = "%(dept)s = ANY(COALESCE(d.departments, '{}'))"
CURRENT_LINK = current_period()
# A period may start this much before the server's clock (a client's clock runs behind).
PAST_TOLERANCE = timedelta(minutes=1)
REQUEST_COLUMNS = (
    "id, credit_code, department, since, until, state, requested_by, requested_at,"
    " decided_by, decided_department, decided_at, reason"
)


def _request_out(row: Sequence[Any]) -> LinkRequestOut:
    names = [c.strip() for c in REQUEST_COLUMNS.split(",")]
    return LinkRequestOut(**dict(zip(names, row, strict=True)))


def subject_out(row: Sequence[Any]) -> SubjectOut:
    departments = list(row[11])
    return SubjectOut(
        credit_code=row[0],
        name=row[1],
        address=row[2],
        grid=row[3],
        industry=row[4],
        credit_scheme=CreditScheme(row[12]),
        credit_grade=parse_grade(row[5]),
        risk_level=RiskLevel(row[6]),
        tags=list(row[7]),
        attributes={k: float(v) for k, v in orjson.loads(row[8]).items()},
        departments=departments,
        cross_department=len(departments) >= 2,
        created_at=row[9],
        updated_at=row[10],
    )


def retired_reason(code: str, replaced_by: str | None) -> str:
    """Why a retired department takes no new supervision links, naming its successor."""
    then = f"; use {replaced_by}" if replaced_by else ""
    return f"{code} is retired (codes are never reused){then}"


def snapshot(subject: SubjectOut) -> dict[str, Any]:
    """JSON-ready record of a subject for the audit chain."""
    return subject.model_dump(mode="json")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(slots=True)
class Tx:
    """One writing transaction: its connection and the changes it made."""

    conn: psycopg.Connection[Any]
    hook: ChangeHook | None
    changes: list[SubjectChanged] = field(default_factory=list)

    def emit(self, change: SubjectChanged) -> None:
        self.changes.append(change)
        if self.hook is not None:
            self.hook(change, self.conn)


class SubjectRepository:
    """CRUD and search of the library; every call is scoped to the actor's department."""

    def __init__(
        self,
        pool: ConnectionPool,
        metrics: SubjectsMetrics,
        on_change: ChangeHook | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.on_change = on_change
        self._listeners: list[ChangeListener] = []

    def add_listener(self, listener: ChangeListener) -> None:
        """Called after each commit with the changes it made (the directory cache uses it)."""
        self._listeners.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A transaction whose changes reach the hook inside it and listeners after commit."""
        try:
            with self.pool.connection() as conn, conn.transaction():
                tx = Tx(conn, self.on_change)
                yield tx
        except psycopg.errors.IntegrityError as err:
            # A concurrent edit won a race the checks above could not see (same link, code).
            raise SubjectConflictError(
                f"the edit clashed with a concurrent one ({err.diag.message_primary}); retry"
            ) from err
        for change in tx.changes:
            self.metrics.changes.labels(change.kind.value).inc()
        if tx.changes:
            for listener in self._listeners:
                try:
                    listener(tuple(tx.changes))
                except Exception:
                    log.exception("subject change listener failed")

    # -- reads -------------------------------------------------------------------------

    def _get(
        self, conn: psycopg.Connection[Any], code: str, dept: str | None, lock: bool = False
    ) -> SubjectOut | None:
        sql = f"SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE s.credit_code = %(code)s"
        if dept is not None:
            sql += " AND " + VISIBLE
        if lock:
            sql += " FOR UPDATE OF s"
        row = conn.execute(sql, {"code": code, "dept": dept}).fetchone()
        return None if row is None else subject_out(row)

    @staticmethod
    def fetch_many(
        conn: psycopg.Connection[Any], codes: Sequence[str], lock: bool = False
    ) -> dict[str, SubjectOut]:
        """Subjects by code, unscoped (callers scope), optionally locked for update."""
        rows = conn.execute(
            f"SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE s.credit_code = ANY(%s)"
            + (" ORDER BY s.credit_code FOR UPDATE OF s" if lock else ""),
            (list(codes),),
        ).fetchall()
        return {r[0]: subject_out(r) for r in rows}

    def get(self, code: str, actor: Actor) -> SubjectOut:
        with self.pool.connection() as conn:
            subject = self._get(conn, code, actor.department)
        if subject is None:
            raise SubjectNotFoundError(f"subject {code!r} not found")
        return subject

    def search(self, query: SubjectQuery, actor: Actor) -> SubjectPage:
        where = [VISIBLE]
        params: dict[str, Any] = {"dept": actor.department}
        if query.q:
            where.append("(s.credit_code LIKE %(q_code)s OR lower(s.name) LIKE %(q_name)s)")
            params["q_code"] = _like(query.q.strip().upper()) + "%"
            params["q_name"] = "%" + _like(query.q.strip().lower()) + "%"
        if query.credit_code:
            where.append("s.credit_code = %(code)s")
            params["code"] = query.credit_code.strip().upper()
        if query.name:
            where.append("lower(s.name) LIKE %(name)s")
            params["name"] = "%" + _like(query.name.strip().lower()) + "%"
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
            raise SubjectInvalidError("order", f"must be one of {', '.join(ORDERS)}")
        cond = " AND ".join(where)
        with self.pool.connection() as conn:
            total_row = conn.execute(
                f"SELECT count(*) FROM {SUBJECT_FROM} WHERE {cond}", params
            ).fetchone()
            rows = conn.execute(
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

    # -- subject writes ------------------------------------------------------------------

    def create(self, data: SubjectIn, actor: Actor) -> SubjectOut:
        """Create a subject supervised by the actor's department from now."""
        now = datetime.now(UTC)
        with self.transaction() as tx:
            row = tx.conn.execute(
                "INSERT INTO subjects (credit_code, name, address, grid, industry,"
                " credit_scheme, credit_grade, risk_level, tags, attributes)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
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
                ),
            ).fetchone()
            if row is None:
                code = data.credit_code
                if self._get(tx.conn, code, actor.department) is not None:
                    raise SubjectConflictError(f"subject {code!r} already exists")
                raise SubjectConflictError(
                    f"subject {code!r} is already in the library under other departments;"
                    f" to supervise it too, POST /api/v1/subjects/{code}/departments"
                )
            link = self._insert_link(tx, data.credit_code, actor.department, now, None, actor)
            created = self._get(tx.conn, data.credit_code, None)
            assert created is not None
            tx.emit(
                SubjectChanged(
                    kind=ChangeKind.CREATED,
                    credit_code=data.credit_code,
                    actor=actor.name,
                    department=actor.department,
                    at=now,
                    after=snapshot(created),
                )
            )
            tx.emit(self._link_change(ChangeKind.DEPARTMENT_LINKED, link, None, actor, now))
        return self.get(data.credit_code, actor)

    def update(self, code: str, patch: SubjectPatch, actor: Actor) -> SubjectOut:
        changes = patch.model_dump(exclude_none=True, mode="json")
        with self.transaction() as tx:
            before = self._get(tx.conn, code, actor.department, lock=True)
            if before is None:
                raise SubjectNotFoundError(f"subject {code!r} not found")
            current = snapshot(before)
            effective = {k: v for k, v in changes.items() if current.get(k) != v}
            if not effective:
                return before
            sets = ", ".join(f"{k} = %({k})s" for k in effective)
            params = {**effective, "code": code}
            if "attributes" in params:
                params["attributes"] = Jsonb(params["attributes"])
            tx.conn.execute(
                f"UPDATE subjects SET {sets}, updated_at = now() WHERE credit_code = %(code)s",
                params,
            )
            after = self._get(tx.conn, code, None)
            assert after is not None
            tx.emit(
                SubjectChanged(
                    kind=ChangeKind.UPDATED,
                    credit_code=code,
                    actor=actor.name,
                    department=actor.department,
                    at=datetime.now(UTC),
                    before=current,
                    after=snapshot(after),
                )
            )
        return after

    def delete(self, code: str, actor: Actor) -> None:
        """Delete a subject only its own department supervises (its links and bindings too)."""
        with self.transaction() as tx:
            before = self._get(tx.conn, code, actor.department, lock=True)
            if before is None:
                raise SubjectNotFoundError(f"subject {code!r} not found")
            others = sorted(self._supervisors(tx.conn, code) - {actor.department})
            if others:
                raise SubjectConflictError(
                    f"subject {code!r} is also supervised by {', '.join(others)}; end your"
                    f" department's supervision with DELETE /api/v1/subjects/{code}/departments/"
                    f"{actor.department} instead"
                )
            record = snapshot(before)
            record["bindings"] = [
                {"device_id": d, "role": r, "point": p}
                for d, r, p in tx.conn.execute(
                    "SELECT device_id, role, point FROM device_bindings WHERE credit_code = %s"
                    " ORDER BY device_id",
                    (code,),
                )
            ]
            tx.conn.execute("DELETE FROM subjects WHERE credit_code = %s", (code,))
            tx.emit(
                SubjectChanged(
                    kind=ChangeKind.DELETED,
                    credit_code=code,
                    actor=actor.name,
                    department=actor.department,
                    at=datetime.now(UTC),
                    before=record,
                )
            )

    # -- department links ----------------------------------------------------------------

    def links(self, code: str, actor: Actor) -> list[LinkOut]:
        """Every supervision period of the subject, current and past."""
        with self.pool.connection() as conn:
            if self._get(conn, code, actor.department) is None:
                raise SubjectNotFoundError(f"subject {code!r} not found")
            rows = conn.execute(
                f"SELECT id, credit_code, department, since, until, ({CURRENT_LINK})"
                " FROM subject_departments WHERE credit_code = %s ORDER BY since, id",
                (code,),
            ).fetchall()
        return [
            LinkOut(
                id=r[0], credit_code=r[1], department=r[2], since=r[3], until=r[4], current=r[5]
            )
            for r in rows
        ]

    @staticmethod
    def _supervisors(conn: psycopg.Connection[Any], code: str) -> set[str]:
        """Departments supervising the subject now or from a set future time."""
        rows = conn.execute(
            "SELECT DISTINCT department FROM subject_departments"
            " WHERE credit_code = %s AND (until IS NULL OR until > now())",
            (code,),
        )
        return {r[0] for r in rows}

    def link(self, code: str, data: LinkIn, actor: Actor) -> LinkOut | LinkRequestOut:
        """Start a supervision period, or ask for one.

        A department joins a subject nobody supervises at once. Joining one that other
        departments supervise needs the consent of one of them: the call files a pending
        request (returned instead of a link) that an admin of a supervising department, or
        the platform admin, approves. An admin of a supervising department may link another
        department directly; that is the consent. Periods cannot start in the past.
        """
        dept = data.department.strip().upper()
        now = datetime.now(UTC)
        since = _aware(data.since, "since")
        if since is not None and since < now - PAST_TOLERANCE:
            raise SubjectInvalidError(
                "since", "must not be in the past: a supervision period starts now or later"
            )
        until = _aware(data.until, "until")
        if until is not None and until <= (since or now):
            raise SubjectInvalidError("until", "must be later than since (and than now)")
        with self.transaction() as tx:
            exists = tx.conn.execute(
                "SELECT 1 FROM subjects WHERE credit_code = %s FOR UPDATE", (code,)
            ).fetchone()
            current = self._get(tx.conn, code, None)
            ours = current is not None and actor.department in current.departments
            if exists is None or (dept != actor.department and not ours and not actor.platform):
                raise SubjectNotFoundError(f"subject {code!r} not found")
            if dept != actor.department and not (actor.admin or actor.platform):
                raise SubjectInvalidError(
                    "department",
                    f"an officer may link only their own department {actor.department};"
                    " linking another department needs the admin role",
                )
            self._check_linkable(tx.conn, code, dept)
            others = self._supervisors(tx.conn, code) - {dept}
            if others and not ours and not actor.platform:
                return self._request(tx, code, dept, since, until, actor, now)
            link = self._insert_link(tx, code, dept, since or now, until, actor)
            tx.emit(self._link_change(ChangeKind.DEPARTMENT_LINKED, link, None, actor, now))
        return link

    @staticmethod
    def _check_linkable(conn: psycopg.Connection[Any], code: str, dept: str) -> None:
        known = conn.execute(
            "SELECT retired, replaced_by FROM departments WHERE code = %s", (dept,)
        ).fetchone()
        if known is None:
            raise SubjectInvalidError("department", f"{dept!r} is not a known department code")
        if known[0]:
            raise SubjectInvalidError("department", retired_reason(dept, known[1]))
        open_link = conn.execute(
            "SELECT since FROM subject_departments WHERE credit_code = %s"
            " AND department = %s AND until IS NULL",
            (code, dept),
        ).fetchone()
        if open_link is not None:
            raise SubjectConflictError(
                f"{dept} already supervises {code} since {open_link[0].isoformat()}"
            )

    def _request(
        self,
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
                f"{dept} has already asked to supervise {code} (request {pending[0]}); it waits"
                " for a supervising department to approve it"
            )
        row = tx.conn.execute(
            "INSERT INTO subject_link_requests (credit_code, department, since, until,"
            f" requested_by) VALUES (%s, %s, %s, %s, %s) RETURNING {REQUEST_COLUMNS}",
            (code, dept, since, until, actor.name),
        ).fetchone()
        assert row is not None
        request = _request_out(row)
        tx.emit(self._request_change(ChangeKind.LINK_REQUESTED, request, actor, now))
        return request

    @staticmethod
    def _request_change(
        kind: ChangeKind, request: LinkRequestOut, actor: Actor, at: datetime
    ) -> SubjectChanged:
        return SubjectChanged(
            kind=kind,
            credit_code=request.credit_code,
            actor=actor.name,
            department=actor.department,
            at=at,
            after=request.model_dump(mode="json"),
            linked_department=request.department,
        )

    def link_requests(
        self, actor: Actor, state: LinkRequestState | None = None
    ) -> list[LinkRequestOut]:
        """Requests the actor's department made, and those on subjects it supervises now."""
        sql = (
            f"SELECT {REQUEST_COLUMNS} FROM subject_link_requests r WHERE (%(platform)s"
            " OR r.department = %(dept)s OR EXISTS (SELECT 1 FROM subject_departments sd"
            " WHERE sd.credit_code = r.credit_code AND sd.department = %(dept)s AND "
            + current_period("sd")
            + "))"
        )
        params: dict[str, Any] = {"platform": actor.platform, "dept": actor.department}
        if state is not None:
            sql += " AND r.state = %(state)s"
            params["state"] = state.value
        sql += " ORDER BY r.requested_at DESC, r.id DESC LIMIT 500"
        with self.pool.connection() as conn:
            return [_request_out(r) for r in conn.execute(sql, params)]

    def _decidable(self, tx: Tx, request_id: int, actor: Actor) -> LinkRequestOut:
        row = tx.conn.execute(
            f"SELECT {REQUEST_COLUMNS} FROM subject_link_requests WHERE id = %s FOR UPDATE",
            (request_id,),
        ).fetchone()
        if row is None:
            raise SubjectNotFoundError(f"link request {request_id} not found")
        request = _request_out(row)
        current = self._get(tx.conn, request.credit_code, None, lock=True)
        supervises = current is not None and actor.department in current.departments
        if not (supervises or actor.platform):
            raise SubjectNotFoundError(f"link request {request_id} not found")
        if not (actor.admin or actor.platform):
            raise SubjectInvalidError(
                "role", "deciding a link request needs the admin role of a supervising department"
            )
        if request.state is not LinkRequestState.PENDING:
            raise SubjectConflictError(
                f"link request {request_id} was already {request.state.value}"
            )
        return request

    def _decide(
        self, tx: Tx, request: LinkRequestOut, state: LinkRequestState, reason: str, actor: Actor
    ) -> LinkRequestOut:
        row = tx.conn.execute(
            "UPDATE subject_link_requests SET state = %s, decided_by = %s,"
            " decided_department = %s, decided_at = now(), reason = %s WHERE id = %s"
            f" RETURNING {REQUEST_COLUMNS}",
            (state.value, actor.name, actor.department, reason, request.id),
        ).fetchone()
        assert row is not None
        return _request_out(row)

    def approve_link(self, request_id: int, reason: str, actor: Actor) -> LinkOut:
        """Consent to a pending request: the department supervises from its asked start."""
        now = datetime.now(UTC)
        with self.transaction() as tx:
            request = self._decidable(tx, request_id, actor)
            since = max(request.since or now, now)
            if request.until is not None and request.until <= since:
                raise SubjectConflictError(
                    f"link request {request_id} asked for a period that has already ended"
                )
            self._check_linkable(tx.conn, request.credit_code, request.department)
            self._decide(tx, request, LinkRequestState.APPROVED, reason, actor)
            link = self._insert_link(
                tx, request.credit_code, request.department, since, request.until, actor
            )
            tx.emit(self._link_change(ChangeKind.DEPARTMENT_LINKED, link, None, actor, now))
        return link

    def refuse_link(self, request_id: int, reason: str, actor: Actor) -> LinkRequestOut:
        now = datetime.now(UTC)
        with self.transaction() as tx:
            request = self._decide(
                tx,
                self._decidable(tx, request_id, actor),
                LinkRequestState.REFUSED,
                reason,
                actor,
            )
            tx.emit(self._request_change(ChangeKind.LINK_REFUSED, request, actor, now))
        return request

    def end_link(self, code: str, department: str, actor: Actor) -> LinkOut:
        """End the open supervision period of `department` now (a future one is withdrawn).

        A department ends only its own supervision; only the platform admin ends another's.
        """
        dept = department.strip().upper()
        now = datetime.now(UTC)
        with self.transaction() as tx:
            scope = None if actor.platform else actor.department
            if self._get(tx.conn, code, scope, lock=True) is None:
                raise SubjectNotFoundError(f"subject {code!r} not found")
            if dept != actor.department and not actor.platform:
                raise SubjectInvalidError(
                    "department",
                    f"a department may end only its own supervision ({actor.department});"
                    f" {dept} ends its own",
                )
            row = tx.conn.execute(
                "SELECT id, credit_code, department, since, until FROM subject_departments"
                " WHERE credit_code = %s AND department = %s AND (until IS NULL OR until > now())"
                " ORDER BY since DESC LIMIT 1 FOR UPDATE",
                (code, dept),
            ).fetchone()
            if row is None:
                raise SubjectNotFoundError(f"{dept} has no open supervision of {code}")
            before = LinkOut(
                id=row[0], credit_code=row[1], department=row[2], since=row[3], until=row[4],
                current=row[3] <= now,
            )  # fmt: skip
            if before.since >= now:
                tx.conn.execute("DELETE FROM subject_departments WHERE id = %s", (before.id,))
                after = before.model_copy(update={"until": before.since, "current": False})
            else:
                tx.conn.execute(
                    "UPDATE subject_departments SET until = %s WHERE id = %s", (now, before.id)
                )
                after = before.model_copy(update={"until": now, "current": False})
            tx.emit(self._link_change(ChangeKind.DEPARTMENT_UNLINKED, after, before, actor, now))
        return after

    def _insert_link(
        self,
        tx: Tx,
        code: str,
        dept: str,
        since: datetime,
        until: datetime | None,
        actor: Actor,
    ) -> LinkOut:
        row = tx.conn.execute(
            "INSERT INTO subject_departments (credit_code, department, since, until)"
            f" VALUES (%s, %s, %s, %s) RETURNING id, since, until, ({CURRENT_LINK})",
            (code, dept, since, until),
        ).fetchone()
        assert row is not None
        return LinkOut(
            id=row[0], credit_code=code, department=dept, since=row[1], until=row[2],
            current=row[3],
        )  # fmt: skip

    @staticmethod
    def _link_change(
        kind: ChangeKind, link: LinkOut, before: LinkOut | None, actor: Actor, at: datetime
    ) -> SubjectChanged:
        return SubjectChanged(
            kind=kind,
            credit_code=link.credit_code,
            actor=actor.name,
            department=actor.department,
            at=at,
            before=None if before is None else before.model_dump(mode="json"),
            after=link.model_dump(mode="json"),
            linked_department=link.department,
        )

    # -- device bindings -----------------------------------------------------------------

    def _binding(
        self, conn: psycopg.Connection[Any], device_id: str, lock: bool = False
    ) -> BindingOut | None:
        row = conn.execute(
            "SELECT b.device_id, b.credit_code, s.name, b.role, b.point, b.since, b.updated_at"
            " FROM device_bindings b JOIN subjects s USING (credit_code)"
            " WHERE b.device_id = %s" + (" FOR UPDATE OF b" if lock else ""),
            (device_id,),
        ).fetchone()
        if row is None:
            return None
        return BindingOut(
            device_id=row[0], credit_code=row[1], subject_name=row[2], role=row[3],
            point=row[4], since=row[5], updated_at=row[6],
        )  # fmt: skip

    def _visible_code(self, conn: psycopg.Connection[Any], code: str, dept: str) -> bool:
        return self._get(conn, code, dept) is not None

    def binding(self, device_id: str, actor: Actor) -> BindingOut:
        with self.pool.connection() as conn:
            found = self._binding(conn, device_id)
            if found is None or (
                not actor.platform
                and not self._visible_code(conn, found.credit_code, actor.department)
            ):
                raise SubjectNotFoundError(f"device {device_id!r} has no binding")
        return found

    def bindings_of(self, code: str, actor: Actor) -> list[BindingOut]:
        with self.pool.connection() as conn:
            if not self._visible_code(conn, code, actor.department):
                raise SubjectNotFoundError(f"subject {code!r} not found")
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT device_id FROM device_bindings WHERE credit_code = %s"
                    " ORDER BY device_id",
                    (code,),
                )
            ]
            found = [self._binding(conn, d) for d in ids]
        return [b for b in found if b is not None]

    def bind(self, device_id: str, data: BindingIn, actor: Actor) -> BindingOut:
        """Bind (or re-bind) a device; both its old and its new subject must be the actor's.

        Only the platform admin binds a device that is bound to nothing yet, to any subject.
        """
        now = datetime.now(UTC)
        with self.transaction() as tx:
            if self._get(tx.conn, data.credit_code, actor.scope, lock=True) is None:
                raise SubjectNotFoundError(f"subject {data.credit_code!r} not found")
            before = self._binding(tx.conn, device_id, lock=True)
            if before is None and not actor.platform:
                raise SubjectForbiddenError(
                    f"device {device_id!r} is bound to no subject yet: binding a new device is"
                    " the platform admin's job (平台管理员)"
                )
            if (
                before is not None
                and not actor.platform
                and not self._visible_code(tx.conn, before.credit_code, actor.department)
            ):
                # Bound to a subject of another department: as invisible as its subject.
                raise SubjectNotFoundError(
                    f"device {device_id!r} is not bindable by {actor.department}"
                )
            if before is not None and (before.credit_code, before.role, before.point) == (
                data.credit_code,
                data.role,
                data.point,
            ):
                return before
            tx.conn.execute(
                "INSERT INTO device_bindings (device_id, credit_code, role, point)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
                " credit_code = excluded.credit_code, role = excluded.role,"
                " point = excluded.point, updated_at = now(),"
                " since = CASE WHEN device_bindings.credit_code = excluded.credit_code"
                " THEN device_bindings.since ELSE now() END",
                (device_id, data.credit_code, data.role, data.point),
            )
            after = self._binding(tx.conn, device_id)
            assert after is not None
            if before is not None and before.credit_code != data.credit_code:
                tx.emit(self._binding_change(ChangeKind.DEVICE_UNBOUND, before, None, actor, now))
                before = None
            tx.emit(self._binding_change(ChangeKind.DEVICE_BOUND, after, before, actor, now))
        return after

    def unbind(self, device_id: str, actor: Actor) -> BindingOut:
        now = datetime.now(UTC)
        with self.transaction() as tx:
            before = self._binding(tx.conn, device_id, lock=True)
            if before is None or (
                not actor.platform
                and not self._visible_code(tx.conn, before.credit_code, actor.department)
            ):
                raise SubjectNotFoundError(f"device {device_id!r} has no binding")
            tx.conn.execute("DELETE FROM device_bindings WHERE device_id = %s", (device_id,))
            tx.emit(self._binding_change(ChangeKind.DEVICE_UNBOUND, before, None, actor, now))
        return before

    @staticmethod
    def _binding_change(
        kind: ChangeKind,
        binding: BindingOut,
        before: BindingOut | None,
        actor: Actor,
        at: datetime,
    ) -> SubjectChanged:
        record = binding.model_dump(mode="json")
        return SubjectChanged(
            kind=kind,
            credit_code=binding.credit_code,
            actor=actor.name,
            department=actor.department,
            at=at,
            before=record if kind is ChangeKind.DEVICE_UNBOUND else (
                None if before is None else before.model_dump(mode="json")
            ),
            after=None if kind is ChangeKind.DEVICE_UNBOUND else record,
            device_id=binding.device_id,
        )  # fmt: skip


def _aware(t: datetime | None, name: str) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise SubjectInvalidError(name, "must carry a UTC offset, e.g. 2026-11-26T08:00:00Z")
    return t
