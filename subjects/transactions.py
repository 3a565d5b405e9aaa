"""Writing transactions of the library: the in-transaction hook (audit), credit history and
the after-commit listeners (cache invalidation)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from subjects import history
from subjects.errors import SubjectConflictError, SubjectRefusal
from subjects.metrics import SubjectsMetrics
from subjects.models import SubjectChanged

log = logging.getLogger(__name__)

# Runs inside the writing transaction with its connection, so an audit row appended there
# commits (or rolls back) together with the edit; raising aborts the edit.
ChangeHook = Callable[[SubjectChanged, psycopg.Connection[Any]], None]
# Runs after commit with every change of the transaction (cache invalidation).
ChangeListener = Callable[[Sequence[SubjectChanged]], None]


@dataclass(slots=True)
class Tx:
    """One writing transaction: its connection and the changes it made."""

    conn: psycopg.Connection[Any]
    hook: ChangeHook | None
    changes: list[SubjectChanged] = field(default_factory=list)

    def emit(self, change: SubjectChanged) -> None:
        self.changes.append(change)
        history.record(self.conn, change)
        if self.hook is not None:
            self.hook(change, self.conn)


@contextmanager
def transaction(
    pool: ConnectionPool,
    metrics: SubjectsMetrics,
    hook: ChangeHook | None,
    listeners: Sequence[ChangeListener],
) -> Iterator[Tx]:
    """A transaction whose changes reach the hook inside it and listeners after commit."""
    try:
        with pool.connection() as conn, conn.transaction():
            tx = Tx(conn, hook)
            yield tx
    except psycopg.errors.IntegrityError as err:
        # A concurrent edit won a race the checks before it could not see (same link, code).
        raise SubjectConflictError(
            SubjectRefusal.CONCURRENT_EDIT,
            f"the edit clashed with a concurrent one ({err.diag.message_primary}); retry",
        ) from err
    for change in tx.changes:
        metrics.changes.labels(change.kind.value).inc()
    if tx.changes:
        for listener in listeners:
            try:
                listener(tuple(tx.changes))
            except Exception:
                log.exception("subject change listener failed")
