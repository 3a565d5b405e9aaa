"""In-memory directory of bindings and subjects: a dict lookup per reading, kept current."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import orjson
import psycopg
from psycopg_pool import ConnectionPool

from subjects.credit import GRADES, parse_grade
from subjects.metrics import SubjectsMetrics
from subjects.models import DeviceContext, Grade, RiskLevel, SubjectChanged, SubjectInfo
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

CHANNEL = "offsite_subjects"
# Beyond this many affected subjects a full reload is cheaper than per-subject queries.
PARTIAL_LIMIT = 500

_COLUMNS = """
    SELECT s.credit_code, s.name, s.grid, s.industry, s.credit_grade, s.risk_level, s.tags,
           s.attributes::text, COALESCE(d.departments, '{}')
"""
# The whole library joins the view once; a few subjects probe it per subject.
_ALL_SUBJECTS_SQL = _COLUMNS + (
    " FROM subjects s LEFT JOIN subject_current_departments d USING (credit_code)"
)
_SOME_SUBJECTS_SQL = _COLUMNS + (
    " FROM subjects s LEFT JOIN LATERAL (SELECT v.departments FROM subject_current_departments v"
    " WHERE v.credit_code = s.credit_code) d ON true WHERE s.credit_code = ANY(%s)"
)
_BINDINGS_SQL = "SELECT device_id, credit_code, role FROM device_bindings"
# When the next supervision period starts or ends: "current" changes then without any write.
_NEXT_TRANSITION_SQL = """
    SELECT min(t) FROM (
        SELECT since AS t FROM subject_departments WHERE since > now()
        UNION ALL SELECT until FROM subject_departments WHERE until > now()) x
"""


@dataclass(slots=True)
class _Snapshot:
    """A generation of the cache: built whole on a full reload, patched by partial ones."""

    subjects: dict[str, SubjectInfo] = field(default_factory=dict)
    devices: dict[str, DeviceContext] = field(default_factory=dict)
    by_subject: dict[str, frozenset[str]] = field(default_factory=dict)
    next_transition: datetime | None = None
    grades: dict[Grade, int] = field(
        default_factory=lambda: {g: 0 for grades in GRADES.values() for g in grades}
    )
    cross: int = 0

    def count(self, info: SubjectInfo, sign: int) -> None:
        self.grades[info.credit_grade] += sign
        self.cross += sign * info.cross_department


def _info(row: Sequence[Any]) -> SubjectInfo:
    return SubjectInfo(
        credit_code=row[0],
        name=row[1],
        grid=row[2],
        industry=row[3],
        credit_grade=parse_grade(row[4]),
        risk_level=RiskLevel(row[5]),
        tags=frozenset(row[6]),
        departments=frozenset(row[8]),
        attributes=MappingProxyType({k: float(v) for k, v in orjson.loads(row[7]).items()}),
    )


def _context(device_id: str, role: str, s: SubjectInfo) -> DeviceContext:
    return DeviceContext(
        device_id=device_id,
        role=role,
        credit_code=s.credit_code,
        subject_name=s.name,
        industry=s.industry,
        grid=s.grid,
        credit_grade=s.credit_grade,
        tags=s.tags,
        departments=s.departments,
        attributes=s.attributes,
    )


class SubjectDirectory:
    """Implements DeviceDirectory over a cache of the whole library.

    Readers take the current snapshot (one attribute read) and do a dict lookup, so the rule
    engine can call `context()` per reading. Writers build a new snapshot and swap it in:
    on edits through the repository in this process (`apply`), on NOTIFY from other
    instances, when a supervision period starts or ends, every `refresh_interval_s`, and on
    an explicit `refresh()`.
    """

    def __init__(
        self,
        pool: ConnectionPool,
        metrics: SubjectsMetrics,
        refresh_interval_s: float = 300.0,
        listen: bool = True,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.pool = pool
        self.supervisor = supervisor or Supervisor()
        self.metrics = metrics
        self.refresh_interval_s = refresh_interval_s
        self.listen = listen
        self._snap = _Snapshot()
        self._write = threading.Lock()
        self._wake = threading.Event()
        self._pending: set[str] = set()
        self._pending_full = False
        self._stopping = threading.Event()
        self._workers: list[Supervised] = []
        self._listeners: list[Callable[[], None]] = []
        self.version = 0
        self.loaded = False

    # -- hot path ----------------------------------------------------------------------

    def context(self, device_id: str) -> DeviceContext | None:
        return self._snap.devices.get(device_id)

    def subject(self, credit_code: str) -> SubjectInfo | None:
        return self._snap.subjects.get(credit_code)

    def departments(self, credit_code: str) -> frozenset[str]:
        """Departments supervising the subject now (empty when unknown)."""
        info = self._snap.subjects.get(credit_code)
        return frozenset() if info is None else info.departments

    def is_cross_department(self, credit_code: str) -> bool:
        info = self._snap.subjects.get(credit_code)
        return info is not None and info.cross_department

    def subjects_of(self, department: str) -> Sequence[SubjectInfo]:
        """Subjects the department supervises now, ordered by credit code."""
        # list() copies in one step, safe against a concurrent in-place patch.
        found = [s for s in list(self._snap.subjects.values()) if department in s.departments]
        return sorted(found, key=lambda s: s.credit_code)

    def devices_of(self, credit_code: str) -> tuple[DeviceContext, ...]:
        """Devices bound to a subject, ordered by device id."""
        snap = self._snap
        ids = sorted(snap.by_subject.get(credit_code, ()))
        return tuple(snap.devices[d] for d in ids if d in snap.devices)

    def bound_devices(self) -> Mapping[str, DeviceContext]:
        """Every binding (a copy: the cache is patched in place)."""
        return dict(self._snap.devices)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called after the cache changed (e.g. the rule engine drops its own lookups)."""
        self._listeners.append(listener)

    # -- refresh -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload everything from the database and swap the new snapshot in."""
        started = time.perf_counter()
        with self._write:
            with self.pool.connection() as conn:
                snap = self._load_all(conn)
            self._swap(snap)
            self.loaded = True
        self.metrics.refreshes.labels("full").inc()
        self.metrics.refresh_seconds.labels("full").observe(time.perf_counter() - started)
        self._publish_gauges(snap)
        self._changed()

    def refresh_subjects(self, codes: Iterable[str], devices: Iterable[str] = ()) -> None:
        """Reload only these subjects and devices (and what is bound to them)."""
        codes = set(codes)
        devices = set(devices)
        if len(codes) + len(devices) > PARTIAL_LIMIT or not self.loaded:
            if self._workers and self.loaded:
                # A bulk change (an import): reload in the background rather than make the
                # importing request wait; the previous snapshot serves meanwhile.
                self._queue(full=True)
            else:
                self.refresh()
            return
        started = time.perf_counter()
        with self._write:
            snap = self._snap
            with self.pool.connection() as conn:
                # A moved device names its new subject in the database and its old one here.
                codes |= {snap.devices[d].credit_code for d in devices if d in snap.devices}
                rows = conn.execute(
                    "SELECT device_id, credit_code, role FROM device_bindings"
                    " WHERE credit_code = ANY(%(codes)s) OR device_id = ANY(%(devices)s)",
                    {"codes": list(codes), "devices": list(devices)},
                ).fetchall()
                codes |= {r[1] for r in rows}
                subjects = {
                    r[0]: _info(r) for r in conn.execute(_SOME_SUBJECTS_SQL, (list(codes),))
                }
                transition = conn.execute(_NEXT_TRANSITION_SQL).fetchone()
            fresh = _Snapshot(subjects=subjects)
            self._bind(fresh, rows)
            gone = set(devices).union(*(snap.by_subject.get(c, ()) for c in codes))
            gone -= fresh.devices.keys()
            for code in codes:
                old = snap.subjects.get(code)
                if old is not None:
                    snap.count(old, -1)
            for info in subjects.values():
                snap.count(info, +1)
            # Updated in place (copying the whole snapshot per edit costs milliseconds at
            # city scale). New entries are written before stale ones are removed, so a
            # reader never misses a device that stays bound; each value is self-contained.
            snap.subjects.update(subjects)
            snap.devices.update(fresh.devices)
            for code in codes:
                if code in fresh.by_subject:
                    snap.by_subject[code] = fresh.by_subject[code]
                else:
                    snap.by_subject.pop(code, None)
                if code not in subjects:
                    snap.subjects.pop(code, None)
            for d in gone:
                snap.devices.pop(d, None)
            self._set_transition(transition[0] if transition else None)
            self.version += 1
        self.metrics.refreshes.labels("partial").inc()
        self.metrics.refresh_seconds.labels("partial").observe(time.perf_counter() - started)
        self._publish_gauges(snap)
        self._changed()

    def _swap(self, snap: _Snapshot) -> None:
        old = self._snap
        self._snap = snap
        self.version += 1
        if snap.next_transition != old.next_transition:
            self._wake.set()

    def _set_transition(self, at: datetime | None) -> None:
        if at != self._snap.next_transition:
            self._snap.next_transition = at
            # The upkeep thread sleeps until the old transition; let it re-plan.
            self._wake.set()

    def apply(self, changes: Sequence[SubjectChanged]) -> None:
        """Repository listener: refresh what the committed changes touched."""
        self.refresh_subjects(
            {c.credit_code for c in changes}, {c.device_id for c in changes if c.device_id}
        )

    def _load_all(self, conn: psycopg.Connection[Any]) -> _Snapshot:
        snap = _Snapshot()
        for row in conn.execute(_ALL_SUBJECTS_SQL):
            info = _info(row)
            snap.subjects[info.credit_code] = info
            snap.count(info, +1)
        self._bind(snap, conn.execute(_BINDINGS_SQL).fetchall())
        row = conn.execute(_NEXT_TRANSITION_SQL).fetchone()
        snap.next_transition = row[0] if row else None
        return snap

    @staticmethod
    def _bind(snap: _Snapshot, rows: Iterable[Sequence[Any]]) -> None:
        grouped: dict[str, set[str]] = {}
        for device_id, code, role in rows:
            info = snap.subjects.get(code)
            if info is None:
                continue
            snap.devices[device_id] = _context(device_id, role, info)
            grouped.setdefault(code, set()).add(device_id)
        for code, ids in grouped.items():
            snap.by_subject[code] = snap.by_subject.get(code, frozenset()) | ids

    def _publish_gauges(self, snap: _Snapshot) -> None:
        for grade, n in snap.grades.items():
            self.metrics.subjects.labels(grade.value).set(n)
        self.metrics.cross_department.set(snap.cross)
        self.metrics.bindings.set(len(snap.devices))

    def _changed(self) -> None:
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                log.exception("directory change listener failed")

    # -- background upkeep ---------------------------------------------------------------

    def start(self) -> None:
        """Load the cache, then keep it current in background threads.

        A database that is down at start is not fatal: the cache stays empty (no device
        bound) and the upkeep thread retries every few seconds.
        """
        try:
            self.refresh()
        except Exception as err:
            self.metrics.refresh_errors.inc()
            log.warning("subject directory not loaded at start (%s); retrying", err)
        self._stopping.clear()
        # Each loop is one long step: it waits for NOTIFY or the next refresh by design, so
        # it has no stall limit; an error escaping it is logged, counted and restarted.
        self._workers = [
            self.supervisor.start("subjects-refresh", self._run(self._upkeep), stall_s=math.inf)
        ]
        if self.listen:
            self._workers.append(
                self.supervisor.start("subjects-listen", self._run(self._listen), stall_s=math.inf)
            )

    def _run(self, loop: Callable[[], None]) -> Callable[[], bool]:
        def step() -> bool:
            loop()
            return False  # the loop returns only when stopping

        return step

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for w in self._workers:
            if not w.join(10):
                log.error("subject directory worker %s did not stop", w.name)
            self.supervisor.forget(w)
        self._workers = []

    def _upkeep(self) -> None:
        retry = 5.0
        next_full = time.monotonic() + (self.refresh_interval_s if self.loaded else retry)
        while not self._stopping.is_set():
            timeout = next_full - time.monotonic()
            transition = self._snap.next_transition
            if transition is not None:
                timeout = min(timeout, transition.timestamp() - time.time() + 0.05)
            self._wake.wait(max(0.0, timeout))
            self._wake.clear()
            if self._stopping.is_set():
                return
            with self._write:
                pending, full = self._pending, self._pending_full
                self._pending, self._pending_full = set(), False
            due = time.monotonic() >= next_full or (
                transition is not None and transition.timestamp() <= time.time()
            )
            try:
                if full or due:
                    self.refresh()
                    next_full = time.monotonic() + self.refresh_interval_s
                elif pending:
                    codes = {p[8:] for p in pending if p.startswith("subject:")}
                    devices = {p[7:] for p in pending if p.startswith("device:")}
                    self.refresh_subjects(codes, devices)
            except Exception:
                # Keep serving the previous snapshot; the database may be briefly away.
                self.metrics.refresh_errors.inc()
                log.exception("subject directory refresh failed; retrying in %.0f s", retry)
                next_full = time.monotonic() + retry

    def _listen(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                info = self.pool.conninfo
                conninfo = info() if callable(info) else info
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Anything missed while not listening is caught by one full reload.
                    self._queue(full=True)
                    delay = 0.5
                    while not self._stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._queue(payload=note.payload)
            except psycopg.Error as err:
                log.warning("subject change listener lost its connection (%s)", err)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30)

    def _queue(self, payload: str | None = None, full: bool = False) -> None:
        with self._write:
            if full or len(self._pending) >= PARTIAL_LIMIT:
                self._pending_full = True
            elif payload:
                self._pending.add(payload)
        self._wake.set()
