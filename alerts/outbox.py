"""Delivers outbox rows: retries with exponential backoff, `dead` after the last attempt."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from alerts import audit
from alerts.metrics import AlertsMetrics
from alerts.notify.base import Notification, Notifier, NotifyError
from alerts.settings import AlertsSettings
from core.clock import Clock

log = logging.getLogger(__name__)


def backoff_s(attempts: int, initial_s: float, max_s: float) -> float:
    """Delay after the `attempts`-th failure: initial, 2x, 4x, ... capped."""
    return float(min(max_s, initial_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Delivered:
    sent: int
    failed: int
    dead: int


@dataclass(eq=False)
class OutboxDelivery:
    """One pass over due rows; the service's outbox thread calls it in a loop.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so several instances deliver side by side
    without sending a row twice while it is being attempted.
    """

    settings: AlertsSettings
    pool: ConnectionPool
    notifiers: Mapping[str, Notifier]
    metrics: AlertsMetrics
    clock: Clock
    batch: int = 50
    # One engine of several (failover): raises unless this engine still holds the
    # lease, inside the claiming transaction, so a stale engine sends nothing more.
    fence: Callable[[psycopg.Connection[Any]], None] | None = None

    def deliver_due(self) -> Delivered:
        sent = failed = dead = 0
        with self.pool.connection() as conn, conn.transaction():
            if self.fence is not None:
                self.fence(conn)
            rows = conn.execute(
                "SELECT id, route, event, payload, attempts, created_at FROM outbox"
                " WHERE status = 'pending' AND next_attempt_at <= %s ORDER BY id LIMIT %s"
                " FOR UPDATE SKIP LOCKED",
                (self.clock(), self.batch),
            ).fetchall()
            for outbox_id, route, event, payload, attempts, created_at in rows:
                result = self._attempt(conn, outbox_id, route, event, payload, attempts, created_at)
                sent += result == "sent"
                failed += result == "failed"
                dead += result == "dead"
        return Delivered(sent, failed, dead)

    def _attempt(
        self,
        conn: psycopg.Connection[Any],
        outbox_id: int,
        route: str,
        event: str,
        payload: dict[str, Any],
        attempts: int,
        created_at: datetime,
    ) -> str:
        notifier = self.notifiers.get(route)
        attempts += 1
        error: str
        if notifier is None:
            error = f"route {route!r} is no longer configured"
            attempts = max(attempts, self.settings.max_attempts)
        else:
            try:
                notifier.send(Notification(outbox_id, route, event, payload, created_at))
            except NotifyError as err:
                error = str(err)
            except Exception as err:  # a channel's bug: retried and, in the end, dead
                log.exception("channel %s raised on notification %s", route, outbox_id)
                error = f"channel error: {err!r}"
            else:
                now = self.clock()
                conn.execute(
                    "UPDATE outbox SET status = 'sent', attempts = %s, sent_at = %s,"
                    " last_error = NULL WHERE id = %s",
                    (attempts, now, outbox_id),
                )
                self.metrics.notifications.labels(route, "sent").inc()
                self.metrics.delivery_seconds.labels(route).observe(
                    max(0.0, (now - created_at).total_seconds())
                )
                return "sent"
        now = self.clock()
        if attempts >= self.settings.max_attempts:
            conn.execute(
                "UPDATE outbox SET status = 'dead', attempts = %s, last_error = %s WHERE id = %s",
                (attempts, error, outbox_id),
            )
            self.metrics.notifications.labels(route, "dead").inc()
            log.error("notification %s to %s is dead after %d attempts: %s",
                      outbox_id, route, attempts, error)  # fmt: skip
            return "dead"
        delay = backoff_s(attempts, self.settings.backoff_initial_s, self.settings.backoff_max_s)
        conn.execute(
            "UPDATE outbox SET attempts = %s, last_error = %s, next_attempt_at = %s WHERE id = %s",
            (attempts, error, now + timedelta(seconds=delay), outbox_id),
        )
        self.metrics.notifications.labels(route, "failed").inc()
        log.warning("notification %s to %s failed (attempt %d, retry in %.1fs): %s",
                    outbox_id, route, attempts, delay, error)  # fmt: skip
        return "failed"

    def next_due_in(self) -> float | None:
        """Seconds until the next pending row is due (None when nothing is pending)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'"
            ).fetchone()
        if row is None or row[0] is None:
            return None
        due: datetime = row[0]
        return max(0.0, (due - self.clock()).total_seconds())


def retry(
    conn: psycopg.Connection[Any], actor: str, department: str, notification_id: int,
    now: datetime,
) -> bool:  # fmt: skip
    """Put a dead (or still failing) delivery of the department's alert back in the queue
    now, audited with who asked; False when there is no such row for the department."""
    with conn.transaction():
        row = conn.execute(
            "WITH old AS (SELECT o.id, o.status, o.attempts FROM outbox o JOIN alerts a"
            " ON a.id = o.alert_id WHERE o.id = %s AND %s = ANY(a.departments)"
            " AND o.status IN ('dead', 'pending') FOR UPDATE OF o)"
            " UPDATE outbox o SET status = 'pending', next_attempt_at = %s FROM old"
            " WHERE o.id = old.id"
            " RETURNING o.id, o.alert_id, o.route, o.event, old.status, old.attempts",
            (notification_id, department, now),
        ).fetchone()
        if row is None:
            return False
        _, alert_id, route, event, was, attempts = row
        detail = {"alert_id": alert_id, "route": route, "event": event, "was": was,
                  "attempts": attempts, "department": department}  # fmt: skip
        record = audit.AuditRecord(
            actor, "notification", str(notification_id), "notification.retried", detail
        )
        audit.append(conn, [record], now)
    return True
