"""The alerts service: takes clue events (a ClueSink), runs the ticker and the outbox worker.

Queue policy: clue events wait in one queue of `queue_max` events. When it is full,
`clue_changed` blocks the rules engine's hand-off until there is room (it gives up only when
the service stops). Clues are committed by the rules package before they are handed on, so
nothing is lost while the engine waits; ingest is back-pressured through the rule queue in
turn. A database error while applying an event is retried with backoff; an event that fails
for any other reason (a bug, bad data) is counted, logged and skipped so one bad event
cannot stop alerting.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from alerts.dispatch import DispatchPlan
from alerts.findings import PhotoUpload
from alerts.lifecycle import Action, Actor, AlertState, DismissReason
from alerts.metrics import AlertsMetrics
from alerts.notify.base import Notifier
from alerts.notify.channels import build_notifiers
from alerts.outbox import OutboxDelivery
from alerts.records import TaskKind, TaskRow, TaskStatus
from alerts.settings import AlertsSettings
from alerts.silences import Matcher, SilenceRow
from alerts.store import AlertStore, Outcome
from alerts.subjects_port import SubjectChange, SubjectLookup
from rules.models import ClueEvent, Severity

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class AlertService:
    """Alerts on subjects; implements rules.models.ClueSink."""

    def __init__(
        self,
        settings: AlertsSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        subjects: SubjectLookup,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.subjects = subjects
        self.clock = clock
        self.metrics = AlertsMetrics(registry)
        self.store = AlertStore(settings, subjects, clock)
        self.notifiers = (
            dict(notifiers) if notifiers is not None else build_notifiers(settings.routes)
        )
        self.delivery = OutboxDelivery(settings, pool, self.notifiers, self.metrics, clock)
        self._queue: queue.Queue[ClueEvent] = queue.Queue(settings.queue_max)
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._stop = threading.Event()
        self._outbox_wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._version_lock = threading.Lock()
        # Bumped after each commit that wrote events; live streams in this process poll it.
        self.events_version = 0
        self._next_prune = 0.0

    # -- ClueSink -------------------------------------------------------------------------

    def clue_changed(self, event: ClueEvent) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(event, timeout=0.5)
                return
            except queue.Full:
                continue
        log.error("alerts stopped; clue %s not applied to an alert", event.clue_id)

    def subject_changed(self, change: SubjectChange) -> None:
        """Subject library edits go to the audit chain, in a transaction of their own."""
        with self.pool.connection() as conn, conn.transaction():
            self.store.record_subject_change(conn, change)

    def subject_change_hook(self, change: SubjectChange, conn: psycopg.Connection[Any]) -> None:
        """The subjects repository's on_change: audit the edit inside the editing transaction,
        so the edit and its record commit together or not at all."""
        self.store.record_subject_change(conn, change)

    def is_protected(self, evidence_id: str) -> bool:
        """video.evidence.EvidenceGuard: evidence of open or recently closed alerts stays.

        When the database cannot answer, the evidence is kept.
        """
        hold = timedelta(days=self.settings.evidence_hold_days)
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    "SELECT 1 FROM alert_clues c JOIN alerts a ON a.id = c.alert_id"
                    " WHERE c.evidence_ids @> ARRAY[%s]::text[]"
                    " AND (a.closed_at IS NULL OR a.closed_at > %s) LIMIT 1",
                    (evidence_id, self.clock() - hold),
                ).fetchone()
        except psycopg.Error as err:
            log.warning("evidence guard could not ask the database, keeping %s: %s",
                        evidence_id, err)  # fmt: skip
            return True
        return row is not None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        for name, target in (
            ("alerts-worker", self._run_worker),
            ("alerts-ticker", self._run_ticker),
            ("alerts-outbox", self._run_outbox),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 15.0) -> None:
        """Apply what is queued, then stop the threads."""
        self._stop.set()
        self._outbox_wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    @property
    def stopping(self) -> bool:
        """True once stop() was called; live streams end then so HTTP can shut down."""
        return self._stop.is_set()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued clue event is applied (tests and bench)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    # -- threads --------------------------------------------------------------------------

    def _run_worker(self) -> None:
        while True:
            try:
                event = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            try:
                self._apply(event)
            finally:
                self._queue.task_done()

    def _apply(self, event: ClueEvent) -> None:
        delay = 0.2
        while True:
            try:
                with self.pool.connection() as conn:
                    outcome = self.store.apply_clue(conn, event)
            except psycopg.OperationalError as err:
                log.warning("clue %s not applied, retrying in %.1fs: %s",
                            event.clue_id, delay, err)  # fmt: skip
                if self._stop.wait(delay):
                    log.error("stopping with clue %s not applied", event.clue_id)
                    return
                delay = min(delay * 2, 10.0)
                continue
            except Exception:
                self.metrics.clue_events.labels("failed").inc()
                log.exception("clue %s could not be applied; skipped", event.clue_id)
                return
            self.metrics.clue_events.labels("applied").inc()
            self._after(outcome)
            return

    def _run_ticker(self) -> None:
        while not self._stop.wait(self.settings.tick_interval_s):
            try:
                self.tick()
            except psycopg.Error as err:
                log.warning("alerts tick failed: %s", err)
            except Exception:
                log.exception("alerts tick failed")

    def tick(self) -> None:
        """Auto-resolve quiet alerts, queue repeats, refresh the gauges, prune now and then."""
        with self.pool.connection() as conn:
            for outcome in self.store.auto_resolve_due(conn):
                self._after(outcome)
            if self.store.repeat_due(conn):
                self._outbox_wake.set()
            self.refresh_gauges(conn)
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
                self.prune(conn)

    def prune(self, conn: psycopg.Connection[Any]) -> tuple[int, int]:
        """Delete stream events and finished notifications past `retention_days`."""
        cutoff = self.clock() - timedelta(days=self.settings.retention_days)
        with conn.transaction():
            events_ = conn.execute("DELETE FROM alert_events WHERE at < %s", (cutoff,)).rowcount
            sent = conn.execute(
                "DELETE FROM outbox WHERE status IN ('sent', 'suppressed') AND created_at < %s",
                (cutoff,),
            ).rowcount
        if events_ or sent:
            log.info("pruned %d stream events and %d notifications", events_, sent)
        return events_, sent

    def refresh_gauges(self, conn: psycopg.Connection[Any]) -> None:
        m = self.metrics
        alerts = {(s.value, v.value): 0 for s in AlertState for v in Severity}
        for state, severity, n in conn.execute(
            "SELECT state, severity, count(*) FROM alerts GROUP BY 1, 2"
        ):
            alerts[(state, severity)] = n
        for (state, severity), n in alerts.items():
            m.alerts.labels(state, severity).set(n)
        tasks = {(k.value, s.value): 0 for k in TaskKind for s in TaskStatus}
        for kind, status, n in conn.execute(
            "SELECT kind, status, count(*) FROM tasks GROUP BY 1, 2"
        ):
            tasks[(kind, status)] = n
        for (kind, status), n in tasks.items():
            m.tasks.labels(kind, status).set(n)
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'),"
            " count(*) FILTER (WHERE status = 'dead'),"
            " extract(epoch FROM %s - min(created_at) FILTER (WHERE status = 'pending'))"
            " FROM outbox WHERE status IN ('pending', 'dead')",
            (self.clock(),),
        ).fetchone()
        assert row is not None
        m.outbox_depth.labels("pending").set(row[0])
        m.outbox_depth.labels("dead").set(row[1])
        m.outbox_age.set(float(row[2] or 0.0))

    def _run_outbox(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.delivery.deliver_due()
                if done.sent or done.failed or done.dead:
                    continue
                due_in = self.delivery.next_due_in()
            except psycopg.Error as err:
                log.warning("outbox delivery failed: %s", err)
                due_in = None
            except Exception:
                # A channel bug must not stop delivery for every other route.
                log.exception("outbox delivery failed")
                due_in = None
            wait = self.settings.outbox_poll_s if due_in is None else due_in
            self._outbox_wake.wait(min(wait, self.settings.outbox_poll_s))
            self._outbox_wake.clear()

    def _after(self, outcome: Outcome) -> None:
        for seconds in outcome.changes.acknowledged_after_s:
            self.metrics.time_to_ack.observe(max(0.0, seconds))
        if outcome.pending_notifications:
            self._outbox_wake.set()
        if outcome.changes.events:
            with self._version_lock:
                self.events_version += 1

    # -- commands (the API calls these) ---------------------------------------------------

    def _run(self, fn: Callable[[psycopg.Connection[Any]], Outcome]) -> Outcome:
        with self.pool.connection() as conn:
            outcome = fn(conn)
        self._after(outcome)
        return outcome

    def act(
        self,
        alert_id: int,
        action: Action,
        actor: Actor,
        reason: DismissReason | None = None,
        note: str = "",
    ) -> Outcome:
        """Acknowledge, dispatch, resolve, dismiss or reopen an alert."""
        return self._run(
            lambda conn: self.store.transition(conn, alert_id, action, actor, reason, note)
        )

    def update_task(
        self, task_id: int, status: TaskStatus, actor: Actor, findings: str | None = None
    ) -> Outcome:
        return self._run(
            lambda conn: self.store.update_task(conn, task_id, status, actor, findings)
        )

    def preview_dispatch(self, alert_id: int, actor: Actor) -> DispatchPlan:
        with self.pool.connection() as conn:
            return self.store.preview_dispatch(conn, alert_id, actor)

    def add_finding(
        self, task_id: int, actor: Actor, text: str, photos: Sequence[PhotoUpload]
    ) -> int:
        """Record a department's finding on a task; returns the finding's id."""
        with self.pool.connection() as conn:
            outcome, finding_id = self.store.add_finding(conn, task_id, actor, text, photos)
        self._after(outcome)
        return finding_id

    def submit_draw(
        self, actor: Actor, period: str, codes: Sequence[str] | None, seed: int | None
    ) -> tuple[int, list[str]]:
        with self.pool.connection() as conn:
            return self.store.submit_draw(conn, actor, period, codes, seed)

    def merge_draws(self, actor: Actor, period: str) -> list[TaskRow]:
        with self.pool.connection() as conn:
            tasks, _pending = self.store.merge_draws(conn, actor, period)
        if tasks:
            with self._version_lock:
                self.events_version += 1
        return tasks

    def create_silence(
        self,
        actor: Actor,
        matcher: Matcher,
        value: str,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> SilenceRow:
        with self.pool.connection() as conn:
            return self.store.create_silence(
                conn, actor, matcher, value, starts_at, ends_at, reason
            )

    def change_silence(
        self,
        actor: Actor,
        silence_id: int,
        ends_at: datetime | None = None,
        reason: str | None = None,
        expire: bool = False,
    ) -> SilenceRow:
        with self.pool.connection() as conn:
            return self.store.change_silence(conn, actor, silence_id, ends_at, reason, expire)
