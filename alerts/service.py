"""The alerts service: takes clue events (a ClueSink), runs the ticker and the outbox worker.

Hand-off: rules commit every clue change with a change number (rules.models.ClueLedger).
The worker applies the changes past its watermark, which moves in the same transaction as
the alert, so a crash or a stop between the clue's commit and the alert's loses nothing: the
next sweep (at start, on every wake-up and every few seconds) applies it, once. The queue
only wakes the worker early; events without a change number (tools, tests) are applied as
they come. A database error while applying is retried with backoff; a change that fails for
any other reason (a bug, bad data) is counted, logged and put on a retry list, and the
watermark moves on so one bad clue cannot stop alerting.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Gauge
from psycopg_pool import ConnectionPool

from alerts import draws, handoff, outbox, silences
from alerts.dispatch import DispatchPlan
from alerts.errors import DrawError, Refusal
from alerts.findings import PhotoUpload
from alerts.lifecycle import Action, AlertState, DismissReason
from alerts.metrics import AlertsMetrics
from alerts.notify.base import Notifier
from alerts.notify.channels import build_notifiers
from alerts.outbox import OutboxDelivery
from alerts.records import TaskKind, TaskRow, TaskStatus
from alerts.settings import AlertsSettings
from alerts.silences import Matcher, SilenceRow
from alerts.store import AlertStore, Outcome
from alerts.subjects_port import SubjectChange, SubjectLookup
from core.clock import Clock, utc_now
from core.principal import Principal
from rules.models import ClueEvent, ClueLedger, Severity
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

PRUNE_INTERVAL_S = 3600.0
# The ledger is read at least this often even with no wake-up (a lost one, another engine).
SWEEP_INTERVAL_S = 2.0
SWEEP_BATCH = 200


class AlertService:
    """Alerts on subjects; implements rules.models.ClueSink."""

    def __init__(
        self,
        settings: AlertsSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        subjects: SubjectLookup,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Clock = utc_now,
        ledger: ClueLedger | None = None,
        supervisor: Supervisor | None = None,
        fence: Callable[[psycopg.Connection[Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.supervisor = supervisor or Supervisor()
        self.ledger = ledger
        # Highest change number announced by rules, and the watermark after the last sweep.
        self._announced = 0
        self._swept = 0
        self.pool = pool
        self.subjects = subjects
        self.clock = clock
        self.metrics = AlertsMetrics(registry)
        self.store = AlertStore(settings, subjects, clock)
        self.notifiers = (
            dict(notifiers) if notifiers is not None else build_notifiers(settings.routes)
        )
        self.delivery = OutboxDelivery(
            settings, pool, self.notifiers, self.metrics, clock, fence=fence
        )
        self._queue: queue.Queue[ClueEvent] = queue.Queue(settings.queue_max)
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._stop = threading.Event()
        self._outbox_wake = threading.Event()
        self._workers: list[Supervised] = []
        self._next_sweep = 0.0
        self._next_tick = 0.0
        self._version_lock = threading.Lock()
        # Bumped after each commit that wrote events; live streams in this process poll it.
        self.events_version = 0
        self._next_prune = 0.0

    # -- ClueSink -------------------------------------------------------------------------

    def clue_changed(self, event: ClueEvent) -> None:
        if event.seq and self.ledger is not None:
            # The change is committed in the ledger: a wake-up is enough, and a full queue
            # (the worker is busy and will sweep anyway) must not block the engine.
            self._announced = max(self._announced, event.seq)
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(event)
            return
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
        self._next_sweep = 0.0
        self._next_tick = time.monotonic() + self.settings.tick_interval_s
        # Stuck means no turn for this long; the longest wait of a turn is a tick or a poll.
        stall = max(60.0, 3 * self.settings.tick_interval_s, 3 * self.settings.outbox_poll_s)
        for name, step in (
            ("alerts-worker", self._worker_step),
            ("alerts-ticker", self._ticker_step),
            ("alerts-outbox", self._outbox_step),
        ):
            self._workers.append(self.supervisor.start(name, step, stall_s=stall))

    def stop(self, timeout: float = 15.0) -> list[str]:
        """Apply what is queued, then stop the threads; returns those that did not stop."""
        self._stop.set()
        self._outbox_wake.set()
        left: list[str] = []
        for worker in self._workers:
            if not self.supervisor.retire(worker, timeout):
                left.append(worker.name)
        self._workers.clear()
        return left

    @property
    def stopping(self) -> bool:
        """True once stop() was called; live streams end then so HTTP can shut down."""
        return self._stop.is_set()

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued or announced clue change is applied (tests and bench)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0 and self._swept >= self._announced:
                return True
            time.sleep(0.01)
        return False

    # -- threads --------------------------------------------------------------------------

    def _worker_step(self) -> bool:
        if self.ledger is not None and time.monotonic() >= self._next_sweep:
            full = self.sweep() >= SWEEP_BATCH
            # A full batch: more is waiting, so sweep again next turn (one batch per turn
            # keeps each turn short, so a long backlog does not read as a stuck worker).
            self._next_sweep = 0.0 if full else time.monotonic() + SWEEP_INTERVAL_S
        try:
            event = self._queue.get(timeout=0.2)
        except queue.Empty:
            return not self._stop.is_set()
        try:
            if event.seq and self.ledger is not None:
                self._next_sweep = 0.0  # a wake-up: the ledger has the change
            else:
                self._apply(event)
        finally:
            self._queue.task_done()
        return True

    def sweep(self) -> int:
        """Apply up to SWEEP_BATCH committed clue changes past the watermark, then the due
        retries; returns how many changes it handled."""
        ledger = self.ledger
        if ledger is None:
            return 0
        handled = 0
        try:
            with self.pool.connection() as conn:
                mark = handoff.watermark(conn)
            for event in ledger.clue_changes_after(mark, SWEEP_BATCH):
                if not self._apply(event, advance=True):
                    return handled  # stopping with the database away: next start
                mark = event.seq
                handled += 1
            self._swept = max(self._swept, mark)
            with self.pool.connection() as conn:
                due = handoff.due_retries(conn, self.clock())
            for retry in due:
                latest = ledger.clue(retry.clue_id)
                if latest is not None:
                    self._apply(latest, retry=retry)
        except psycopg.Error as err:
            log.warning("clue ledger not read, next sweep retries: %s", err)
        return handled

    def _apply(
        self, event: ClueEvent, advance: bool = False, retry: handoff.Retry | None = None
    ) -> bool:
        """Apply one event; False only when stopping before it could be applied."""
        delay = 0.2
        while True:
            try:
                with self.pool.connection() as conn:
                    outcome = self.store.apply_clue(conn, event, advance=advance)
            except psycopg.OperationalError as err:
                log.warning("clue %s not applied, retrying in %.1fs: %s",
                            event.clue_id, delay, err)  # fmt: skip
                if self._stop.wait(delay):
                    log.error("stopping with clue %s not applied", event.clue_id)
                    return False
                delay = min(delay * 2, 10.0)
                continue
            except Exception as err:
                self.metrics.clue_events.labels("failed").inc()
                log.exception("clue %s could not be applied; put on the retry list",
                              event.clue_id)  # fmt: skip
                self._give_up(event, advance, retry, f"{type(err).__name__}: {err}")
                return True
            if outcome.alert is None and not outcome.changes.audit:
                self.metrics.clue_events.labels("duplicate").inc()
            else:
                self.metrics.clue_events.labels("applied").inc()
            self._after(outcome)
            return True

    def _give_up(
        self, event: ClueEvent, advance: bool, retry: handoff.Retry | None, error: str
    ) -> None:
        if not event.seq:
            return  # not from the ledger: nothing to retry it from
        try:
            with self.pool.connection() as conn:
                if advance:
                    handoff.skip(conn, event.seq, event.clue_id, error, self.clock())
                else:
                    handoff.failed_again(conn, event.clue_id, error, self.clock())
        except psycopg.Error as err:
            # The watermark did not move: the next sweep tries the change again.
            log.warning("clue %s not put on the retry list: %s", event.clue_id, err)
        if retry is not None:
            log.error("clue %s failed %d times: %s", event.clue_id, retry.attempts + 1, error)

    def _ticker_step(self) -> bool:
        # Short waits, so a stop is seen at once and a turn always ends (no false "stuck").
        if self._stop.wait(min(0.5, self.settings.tick_interval_s)):
            return False
        if time.monotonic() < self._next_tick:
            return True
        self._next_tick = time.monotonic() + self.settings.tick_interval_s
        try:
            self.tick()
        except psycopg.Error as err:
            log.warning("alerts tick failed: %s", err)
        return True

    def tick(self) -> None:
        """Auto-resolve quiet alerts, queue repeats, escalate unacknowledged alerts by credit
        grade, refresh the gauges, prune now and then."""
        with self.pool.connection() as conn:
            for outcome in self.store.auto_resolve_due(conn):
                self._after(outcome)
            if self.store.repeat_due(conn):
                self._outbox_wake.set()
            for done in self.store.escalate_due(conn):
                self._after(Outcome(done.alert, done.pending_notifications, done.changes))
            self.refresh_gauges(conn)
            self.metrics.clue_retries.set(handoff.retry_count(conn))
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
        _set_counts(
            m.alerts,
            conn.execute("SELECT state, severity, count(*) FROM alerts GROUP BY 1, 2"),
            [(s.value, v.value) for s in AlertState for v in Severity],
        )
        _set_counts(
            m.tasks,
            conn.execute("SELECT kind, status, count(*) FROM tasks GROUP BY 1, 2"),
            [(k.value, s.value) for k in TaskKind for s in TaskStatus],
        )
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

    def _outbox_step(self) -> bool:
        # Any other error escapes to the supervisor: logged, counted, shown as unhealthy and
        # restarted with a backoff, so one channel's bug neither spins nor ends delivery.
        if self._stop.is_set():
            return False
        try:
            done = self.delivery.deliver_due()
            if done.sent or done.failed or done.dead:
                return True
            due_in = self.delivery.next_due_in()
        except psycopg.Error as err:
            log.warning("outbox delivery failed: %s", err)
            due_in = None
        wait = self.settings.outbox_poll_s if due_in is None else due_in
        self._outbox_wake.wait(min(wait, self.settings.outbox_poll_s))
        self._outbox_wake.clear()
        return True

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
        actor: Principal,
        reason: DismissReason | None = None,
        note: str = "",
    ) -> Outcome:
        """Acknowledge, dispatch, resolve, dismiss or reopen an alert."""
        return self._run(
            lambda conn: self.store.transition(conn, alert_id, action, actor, reason, note)
        )

    def update_task(
        self, task_id: int, status: TaskStatus, actor: Principal, findings: str | None = None
    ) -> Outcome:
        return self._run(
            lambda conn: self.store.update_task(conn, task_id, status, actor, findings)
        )

    def preview_dispatch(self, alert_id: int, actor: Principal) -> DispatchPlan:
        with self.pool.connection() as conn:
            return self.store.preview_dispatch(conn, alert_id, actor)

    def add_finding(
        self, task_id: int, actor: Principal, text: str, photos: Sequence[PhotoUpload]
    ) -> int:
        """Record a department's finding on a task; returns the finding's id."""
        with self.pool.connection() as conn:
            outcome, finding_id = self.store.add_finding(conn, task_id, actor, text, photos)
        self._after(outcome)
        return finding_id

    def submit_draw(
        self, actor: Principal, period: str, codes: Sequence[str] | None, seed: int | None
    ) -> tuple[int, list[str]]:
        with self.pool.connection() as conn:
            return draws.submit(conn, self.subjects, self.settings, actor, period, codes, seed,
                                self.clock())  # fmt: skip

    def merge_draws(self, actor: Principal, period: str) -> list[TaskRow]:
        with self.pool.connection() as conn:
            tasks, _pending = draws.merge(conn, self.subjects, self.settings, self.store.router,
                                          actor, period, self.clock())  # fmt: skip
        if tasks:
            with self._version_lock:
                self.events_version += 1
        return tasks

    def create_silence(
        self,
        actor: Principal,
        matcher: Matcher,
        value: str,
        starts_at: datetime,
        ends_at: datetime,
        reason: str,
    ) -> SilenceRow:
        with self.pool.connection() as conn:
            return silences.create(conn, actor, matcher, value, starts_at, ends_at, reason,
                                   self.clock())  # fmt: skip

    def change_silence(
        self,
        actor: Principal,
        silence_id: int,
        ends_at: datetime | None = None,
        reason: str | None = None,
        expire: bool = False,
    ) -> SilenceRow:
        with self.pool.connection() as conn:
            return silences.change(conn, actor, silence_id, self.clock(), ends_at, reason, expire)

    def preview_silence_extension(
        self, actor: Principal, silence_id: int, ends_at: datetime
    ) -> SilenceRow:
        """The silence an extension to `ends_at` would change, after the same checks."""
        with self.pool.connection() as conn:
            return silences.preview_extension(conn, actor, silence_id, ends_at, self.clock())

    def extend_silence(self, actor: Principal, silence_id: int, ends_at: datetime) -> SilenceRow:
        with self.pool.connection() as conn:
            return silences.extend(conn, actor, silence_id, ends_at, self.clock())

    def preview_draw(self, actor: Principal, seed: int) -> draws.DrawPreview:
        """What a sampled draw with `seed` would pick now, per credit grade (nothing stored)."""
        with self.pool.connection() as conn:
            return draws.preview(conn, self.subjects, self.settings, actor, seed, self.clock())

    def confirm_draw(
        self, actor: Principal, period: str, seed: int, expected: Sequence[str]
    ) -> tuple[int, list[str]]:
        """Store the sampled draw an officer previewed, or refuse when the department's
        subjects changed since the preview (the same seed would pick others)."""
        now = self.preview_draw(actor, seed).codes
        if sorted(expected) != now:
            raise DrawError(
                Refusal.DRAW_SCOPE_CHANGED,
                "credit_codes: the department's subjects changed since the preview; preview again",
            )
        return self.submit_draw(actor, period, None, seed)

    def retry_notification(self, actor: Principal, notification_id: int) -> bool:
        """Queue a dead delivery again now (audited) and wake the outbox to send it."""
        if actor.is_system:
            return False
        with self.pool.connection() as conn:
            queued = outbox.retry(conn, actor.name, actor.department, notification_id,
                                  self.clock())  # fmt: skip
        if queued:
            self._outbox_wake.set()
        return queued


def _set_counts(
    gauge: Gauge, rows: Iterable[tuple[str, str, int]], labels: Iterable[tuple[str, str]]
) -> None:
    """Set a two-label gauge from counted rows; label pairs with no row are set to 0, so a
    state that emptied since the last tick does not keep its old count."""
    counts = dict.fromkeys(labels, 0)
    for first, second, n in rows:
        counts[(first, second)] = n
    for (first, second), n in counts.items():
        gauge.labels(first, second).set(n)
