"""The library's entry point: every read and write scoped to the actor, one clock per command.

The work is done by one module per job (rows, search, edits, links, bindings, history,
transactions); this class holds the pool, the hooks and the clock, and checks visibility.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from core.clock import Clock, utc_now
from core.principal import Principal as Actor
from subjects import bindings, edits, history, links, rows, search
from subjects.errors import (
    SubjectConflictError,
    SubjectError,
    SubjectForbiddenError,
    SubjectInvalidError,
    SubjectNotFoundError,
    SubjectRefusal,
    retired_reason,
)
from subjects.errors import SubjectRefusal as R
from subjects.history import CreditChange
from subjects.metrics import SubjectsMetrics
from subjects.rows import snapshot
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
from subjects.search import SubjectQuery
from subjects.transactions import ChangeHook, ChangeListener, Tx, transaction

# Names callers have always imported from here.
__all__ = [
    "Actor",
    "ChangeHook",
    "ChangeListener",
    "SubjectConflictError",
    "SubjectError",
    "SubjectForbiddenError",
    "SubjectInvalidError",
    "SubjectNotFoundError",
    "SubjectQuery",
    "SubjectRefusal",
    "SubjectRepository",
    "retired_reason",
    "snapshot",
]


class SubjectRepository:
    """CRUD and search of the library; every call is scoped to the actor's department."""

    def __init__(
        self,
        pool: ConnectionPool,
        metrics: SubjectsMetrics,
        on_change: ChangeHook | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        # Settable after construction: the composition root wires the audit hook later.
        self.on_change = on_change
        self.clock = clock
        self._listeners: list[ChangeListener] = []

    def add_listener(self, listener: ChangeListener) -> None:
        """Called after each commit with the changes it made (the directory cache uses it)."""
        self._listeners.append(listener)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A transaction whose changes reach the hook inside it and listeners after commit."""
        with transaction(self.pool, self.metrics, self.on_change, self._listeners) as tx:
            yield tx

    # -- reads -------------------------------------------------------------------------

    @staticmethod
    def fetch_many(
        conn: psycopg.Connection[Any], codes: Sequence[str], lock: bool = False
    ) -> dict[str, SubjectOut]:
        """Subjects by code, unscoped (callers scope), optionally locked for update."""
        return rows.fetch_many(conn, codes, lock)

    def get(self, code: str, actor: Actor) -> SubjectOut:
        """The subject if the actor's department supervises it now (any, for the platform)."""
        with self.pool.connection() as conn:
            subject = rows.get(conn, code, actor.scope)
        if subject is None:
            raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
        return subject

    def search(self, query: SubjectQuery, actor: Actor) -> SubjectPage:
        with self.pool.connection() as conn:
            return search.search(conn, query, actor.scope)

    def credit_history(self, code: str, actor: Actor) -> list[CreditChange]:
        """The subject's credit grade changes, newest first."""
        with self.pool.connection() as conn:
            if rows.get(conn, code, actor.scope) is None:
                raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
            return history.history(conn, code)

    # -- subject writes ------------------------------------------------------------------

    def create(self, data: SubjectIn, actor: Actor) -> SubjectOut:
        """Create a subject supervised by the actor's department from now."""
        now = self.clock()
        with self.transaction() as tx:
            edits.create(tx, data, actor, now)
        return self.get(data.credit_code, actor)

    def update(self, code: str, patch: SubjectPatch, actor: Actor) -> SubjectOut:
        now = self.clock()
        with self.transaction() as tx:
            return edits.update(tx, code, patch, actor, now)

    def delete(self, code: str, actor: Actor) -> None:
        """Delete a subject only its own department supervises (its links and bindings too)."""
        now = self.clock()
        with self.transaction() as tx:
            edits.delete(tx, code, actor, now)

    # -- department links ----------------------------------------------------------------

    def links(self, code: str, actor: Actor) -> list[LinkOut]:
        """Every supervision period of the subject, current and past."""
        with self.pool.connection() as conn:
            if rows.get(conn, code, actor.scope) is None:
                raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
            return links.periods(conn, code, self.clock())

    def link(self, code: str, data: LinkIn, actor: Actor) -> LinkOut | LinkRequestOut:
        """Start a supervision period, or ask for one.

        A department joins a subject nobody supervises at once. Joining one that other
        departments supervise needs the consent of one of them: the call files a pending
        request (returned instead of a link) that an admin of a supervising department, or
        the platform admin, approves. An admin of a supervising department may link another
        department directly; that is the consent. Periods cannot start in the past.
        """
        now = self.clock()
        with self.transaction() as tx:
            return links.link(tx, code, data, actor, now)

    def link_requests(
        self, actor: Actor, state: LinkRequestState | None = None, code: str | None = None
    ) -> list[LinkRequestOut]:
        """Requests the actor's department made, and those on subjects it supervises now."""
        with self.pool.connection() as conn:
            return links.requests(conn, actor, self.clock(), state, code)

    def approve_link(self, request_id: int, reason: str, actor: Actor) -> LinkOut:
        """Consent to a pending request: the department supervises from its asked start."""
        now = self.clock()
        with self.transaction() as tx:
            return links.approve(tx, request_id, reason, actor, now)

    def refuse_link(self, request_id: int, reason: str, actor: Actor) -> LinkRequestOut:
        now = self.clock()
        with self.transaction() as tx:
            return links.refuse(tx, request_id, reason, actor, now)

    def end_link(self, code: str, department: str, actor: Actor) -> LinkOut:
        """End the open supervision period of `department` now (a future one is withdrawn).

        A department ends only its own supervision; only the platform admin ends another's.
        """
        now = self.clock()
        with self.transaction() as tx:
            return links.end(tx, code, department, actor, now)

    # -- device bindings -----------------------------------------------------------------

    def binding(self, device_id: str, actor: Actor) -> BindingOut:
        with self.pool.connection() as conn:
            found = bindings.visible(conn, device_id, actor)
        if found is None:
            raise SubjectNotFoundError(R.DEVICE_NOT_BOUND, f"device {device_id!r} has no binding")
        return found

    def bindings_of(self, code: str, actor: Actor) -> list[BindingOut]:
        """The subject's devices; the platform admin sees every subject's (it binds them)."""
        with self.pool.connection() as conn:
            found = bindings.of_subject(conn, code, actor.scope)
        if found is None:
            raise SubjectNotFoundError(R.SUBJECT_NOT_FOUND, f"subject {code!r} not found")
        return found

    def department_bindings(
        self, actor: Actor, limit: int = 200, offset: int = 0
    ) -> tuple[int, list[BindingOut]]:
        """The devices on the subjects the actor's department supervises now (the platform
        admin: every bound device), a page by device id, with the total."""
        with self.pool.connection() as conn:
            return bindings.of_department(conn, actor.scope, limit, offset)

    def bind(self, device_id: str, data: BindingIn, actor: Actor) -> BindingOut:
        """Bind (or re-bind) a device; both its old and its new subject must be the actor's.

        Only the platform admin binds a device that is bound to nothing yet, to any subject.
        """
        now = self.clock()
        with self.transaction() as tx:
            return bindings.bind(tx, device_id, data, actor, now)

    def unbind(self, device_id: str, actor: Actor) -> BindingOut:
        now = self.clock()
        with self.transaction() as tx:
            return bindings.unbind(tx, device_id, actor, now)
