"""The rule service: a bounded queue from ingest and video, one engine thread, clue commits.

Queue policy: the queue holds `queue_max_batches` batches. When it is full, the caller
(the ingest writer thread, right after its commit) blocks until there is room. The writer
then stops draining its own queue, the MQTT thread stops acknowledging, and the broker
keeps the rest in the persistent session: back-pressure, never loss. Readings are committed
before they reach us, so a crash loses no data either: state is rebuilt from the database.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import DeviceStatus, Reading
from rules.engine import REPLAYED, ClueOp, Engine
from rules.loader import RuleLoadError, RuleProblem, RuleSet, load_directory
from rules.metrics import RulesMetrics
from rules.models import ClueEvent, ClueSink, ClueStatus
from rules.settings import RulesSettings
from rules.spec import (
    AbsenceRule,
    CompositeRule,
    FlagShareRule,
    FlatlineRule,
    RateRule,
    Rule,
    ThresholdRule,
    WindowRule,
)
from rules.store import (
    apply_ops,
    department_codes,
    last_seen,
    load_open,
    replay_metrics_of,
    stream_readings,
)
from subjects.models import DeviceDirectory
from video.models import Detection

log = logging.getLogger(__name__)


class _Work(NamedTuple):
    kind: str  # readings | detections | status | tick | barrier | reload
    payload: Any


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: the new rule count, or the problems that kept the old set."""

    ok: bool
    rules: int
    problems: tuple[RuleProblem, ...] = ()


def lookback_s(rules: Sequence[Rule], lateness: float) -> float:
    """How much history rebuilds the state of every rule."""
    need = 0.0
    for r in rules:
        span = 0.0
        if isinstance(r, ThresholdRule | RateRule | CompositeRule):
            span = r.hold + r.keep_firing_for
        if isinstance(r, WindowRule):
            span = 2 * r.window_s + r.hold + r.keep_firing_for
        if isinstance(r, RateRule):
            span += r.max_gap
        if isinstance(r, CompositeRule):
            span += max(c.max_age for c in r.conditions)
        if isinstance(r, FlatlineRule):
            span = r.duration * 2
        if isinstance(r, FlagShareRule):
            span = 2 * r.window_s
        need = max(need, span)
    return need + lateness + 60.0


def replay_metrics(rules: Sequence[Rule]) -> list[str]:
    return sorted({m for r in rules if r.kind in REPLAYED for m in replay_metrics_of(r) or ()})


class RuleService:
    """Owns the rule set, the engine thread and the hand-off of committed clue transitions."""

    def __init__(
        self,
        settings: RulesSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        directory: DeviceDirectory,
        sinks: Sequence[ClueSink] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.directory = directory
        self._directory_changed = threading.Event()
        # A list passed in is kept by reference: sinks wired after construction still count.
        self.sinks = sinks if isinstance(sinks, list) else list(sinks)
        self.clock = clock
        self.metrics = RulesMetrics(registry)
        self.ruleset = RuleSet((), {})
        self._queue: queue.Queue[_Work] = queue.Queue(settings.queue_max_batches)
        self.metrics.queue_capacity.set(settings.queue_max_batches)
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._engine: Engine | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reload_lock = threading.Lock()
        # Transitions committed while starting (opens a crash left unevaluated) are handed
        # on by the engine thread at its first batch or tick, once the composition root has
        # had the chance to add the sinks wired after this service (alerts).
        self._held: list[ClueEvent] | None = []

    # -- sinks of ingest and video (called from their threads) ------------------------

    def readings_committed(self, readings: Sequence[Reading]) -> None:
        self._put(_Work("readings", list(readings)))

    def detections_observed(self, detections: Sequence[Detection]) -> None:
        self._put(_Work("detections", list(detections)))

    def status_changed(self, status: DeviceStatus) -> None:
        self._put(_Work("status", status))

    def _put(self, work: _Work) -> None:
        # Blocks while the queue is full (see the module docstring); gives up only on stop.
        while not self._stop.is_set():
            try:
                self._queue.put(work, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- lifecycle --------------------------------------------------------------------

    def departments(self) -> list[str]:
        with self.pool.connection() as conn:
            return department_codes(conn)

    def load(self) -> RuleSet:
        """The rule directory, validated; raises RuleLoadError."""
        return load_directory(self.settings.directory, self.departments())

    def start(self) -> None:
        if self.settings.directory.is_dir():
            self.ruleset = self.load()
        else:
            log.warning("rules directory %s not found: no rules active", self.settings.directory)
        self.metrics.rules_loaded.set(len(self.ruleset.rules))
        self._engine = self._build_engine(self.ruleset)
        self._thread = threading.Thread(target=self._run, name="rules-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Evaluate what is queued, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def reload(self) -> ReloadResult:
        """Load the directory again; an invalid set is refused and the old one stays."""
        with self._reload_lock:
            try:
                ruleset = self.load()
            except RuleLoadError as err:
                self.metrics.reload_failures.inc()
                for p in err.problems:
                    log.error("rule reload refused: %s", p)
                return ReloadResult(False, len(self.ruleset.rules), err.problems)
            done = threading.Event()
            self._put(_Work("reload", (ruleset, done)))
            if self._thread is not None and self._thread.is_alive():
                done.wait(120)
            log.info("rules reloaded: %d rules", len(ruleset.rules))
            return ReloadResult(True, len(ruleset.rules))

    def tick_now(self) -> None:
        """Run the timer tick at the next turn of the engine thread (tests, dry tools)."""
        self._put(_Work("tick", None))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once everything queued so far is evaluated and committed (tests, bench)."""
        done = threading.Event()
        self._put(_Work("barrier", done))
        return done.wait(timeout)

    # -- engine thread ----------------------------------------------------------------

    def _build_engine(self, ruleset: RuleSet) -> Engine:
        """A fresh engine with its state rebuilt from the database (start and reload)."""
        m = self.metrics
        engine = Engine(
            ruleset.rules,
            self.directory,
            self.settings.credit,
            self.settings.allowed_lateness_s,
            self.settings.max_trigger_values,
            on_late_dropped=lambda rule: m.late_dropped.labels(rule).inc(),
            on_evaluations=m.evaluations.inc,
        )
        now = self.clock()
        span = min(
            lookback_s(ruleset.rules, self.settings.allowed_lateness_s),
            self.settings.rebuild_lookback_max_s,
        )
        since = datetime.fromtimestamp(now - span, UTC)
        metrics = replay_metrics(ruleset.rules)
        started = time.perf_counter()
        with self.pool.connection() as conn:
            open_clues = load_open(conn)
            if any(isinstance(r, AbsenceRule) for r in ruleset.rules):
                absence_metrics = [
                    r.selector.metric
                    for r in ruleset.rules
                    if isinstance(r, AbsenceRule) and r.selector.metric
                ]
                engine.watch_absence(last_seen(conn, absence_metrics, since))
            readings = stream_readings(conn, metrics, since) if metrics else iter(())
            ops = engine.restore(readings, open_clues)
        log.info(
            "rule state rebuilt from %.0f s of readings in %.2f s (%d open clues)",
            span,
            time.perf_counter() - started,
            len(open_clues),
        )
        if ops:
            self._commit(ops)
        return engine

    def directory_changed(self) -> None:
        """The subject directory changed (any thread): look devices up again at the next
        turn of the engine loop, within a tick, instead of at the periodic refresh."""
        self._directory_changed.set()

    def _run(self) -> None:
        next_tick = self.clock() + self.settings.tick_interval_s
        held, self._held = self._held or [], None
        first = True
        next_refresh = time.monotonic() + self.settings.directory_refresh_s
        while True:
            timeout = max(0.0, min(next_tick - self.clock(), self.settings.tick_interval_s))
            try:
                work: _Work | None = self._queue.get(timeout=timeout)
            except queue.Empty:
                work = None
                if self._stop.is_set():
                    return
            if first:
                first = False
                self._hand_off(held)
            ops: list[ClueOp] = []
            barriers: list[threading.Event] = []
            # Drain what is waiting so one transaction carries many transitions.
            while work is not None:
                self._handle(work, ops, barriers)
                if len(ops) > 500:
                    break
                try:
                    work = self._queue.get_nowait()
                except queue.Empty:
                    work = None
            now = self.clock()
            if now >= next_tick and self._engine is not None:
                ops += self._engine.tick(now)
                next_tick = now + self.settings.tick_interval_s
            changed = self._directory_changed.is_set()
            if (changed or time.monotonic() >= next_refresh) and self._engine is not None:
                self._directory_changed.clear()
                self._engine.invalidate_directory()
                next_refresh = time.monotonic() + self.settings.directory_refresh_s
            if ops:
                self._commit(ops)
            for b in barriers:
                b.set()

    def _handle(self, work: _Work, ops: list[ClueOp], barriers: list[threading.Event]) -> None:
        engine = self._engine
        assert engine is not None
        try:
            if work.kind == "readings":
                readings: list[Reading] = work.payload
                ops += engine.on_readings(readings)
                if readings:
                    newest = max(r.time for r in readings).timestamp()
                    self.metrics.evaluation_lag.observe(max(0.0, self.clock() - newest))
            elif work.kind == "detections":
                ops += engine.on_detections(work.payload)
            elif work.kind == "status":
                engine.on_status(work.payload)
            elif work.kind == "tick":
                ops += engine.tick(self.clock())
            elif work.kind == "barrier":
                barriers.append(work.payload)
            elif work.kind == "reload":
                ruleset, done = work.payload
                if ops:
                    self._commit(ops)
                    ops.clear()
                self._engine = self._build_engine(ruleset)
                self.ruleset = ruleset
                self.metrics.rules_loaded.set(len(ruleset.rules))
                done.set()
        except Exception:
            # A bug in one rule must not stop evaluation of everything else.
            log.exception("rule evaluation failed for a %s batch", work.kind)

    def _commit(self, ops: list[ClueOp]) -> None:
        delay = 0.2
        while True:
            try:
                with self.pool.connection() as conn:
                    events = apply_ops(conn, ops)
                break
            except psycopg.Error as err:
                self.metrics.store_errors.inc()
                log.warning("clue transitions not committed, retrying: %s", err)
                if self._stop.wait(delay):
                    # Lost only from memory: at start the rebuild re-opens what is firing.
                    log.error("stopping with %d uncommitted clue transitions", len(ops))
                    return
                delay = min(delay * 2, 10.0)
        now = self.clock()
        for op, event in events:
            labels = (event.rule_id, event.department)
            if op.action in ("open", "closed"):
                self.metrics.clues_opened.labels(*labels).inc()
            if op.action == "open":
                self.metrics.clue_latency.observe(max(0.0, now - op.at))
            if event.status is ClueStatus.RESOLVED:
                self.metrics.clues_resolved.labels(*labels).inc()
        fresh = [event for _op, event in events]
        if self._held is not None:
            self._held += fresh
        else:
            self._hand_off(fresh)

    def _hand_off(self, events: list[ClueEvent]) -> None:
        for event in events:
            for sink in self.sinks:
                try:
                    sink.clue_changed(event)
                except Exception:
                    self.metrics.sink_errors.inc()
                    log.exception("clue sink %r failed on clue %s", sink, event.clue_id)
