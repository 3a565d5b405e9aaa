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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, assert_never

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import DeviceStatus, Reading
from ingest.replay import last_seen, stream_readings
from rules.engine import ClueOp, Engine
from rules.evaluate import ClueAction
from rules.kinds import entry_of
from rules.loader import RuleLoadError, RuleProblem, RuleSet, load_directory
from rules.metrics import RulesMetrics
from rules.models import ClueEvent, ClueSink, ClueStatus
from rules.settings import RulesSettings
from rules.spec import (
    AbsenceRule,
    Rule,
)
from rules.store import (
    apply_ops,
    load_open,
    replay_metrics_of,
)
from subjects.departments import department_codes
from subjects.models import DeviceDirectory
from supervise.worker import Supervised, Supervisor
from video.models import Detection

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _ReloadJob:
    """A reload handed to the engine thread; `error` says why the rebuild failed."""

    ruleset: RuleSet
    done: threading.Event
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Readings:
    readings: list[Reading]
    # Called once the transitions these readings caused are committed (an engine that reads
    # the broker itself acknowledges the message then); never when that commit is given up.
    done: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class _Detections:
    detections: list[Detection]


@dataclass(frozen=True, slots=True)
class _Status:
    status: DeviceStatus


@dataclass(frozen=True, slots=True)
class _Tick:
    """Evaluate the clock-driven rules now."""


@dataclass(frozen=True, slots=True)
class _Barrier:
    """Set `done` once everything queued before it is committed."""

    done: threading.Event


@dataclass(frozen=True, slots=True)
class _Reload:
    job: _ReloadJob


# What the engine thread's queue carries.
_Work = _Readings | _Detections | _Status | _Tick | _Barrier | _Reload


class CommitGuard(Protocol):
    """Runs inside every clue commit of an engine that is one of several (failover): checks
    its fencing epoch (raises when another engine took over) and records how far it read."""

    def in_commit(self, conn: psycopg.Connection[Any], evaluated: Sequence[Reading]) -> None: ...


# Stored readings that rebuild the rule state: (conn, metrics, since) -> readings in order.
ReplaySource = Callable[[psycopg.Connection[Any], Sequence[str], datetime], Iterator[Reading]]


# A rule that raised is shown as failing for this long after its last error.
RULE_ERROR_HOLD_S = 300.0
RELOAD_WAIT_S = 60.0


@dataclass(frozen=True, slots=True)
class RuleHealth:
    """A rule that raised: how often, the last error and when (monotonic seconds)."""

    rule_id: str
    errors: int
    last_error: str
    last_at: float


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did: the new rule count, or the problems that kept the old set."""

    ok: bool
    rules: int
    problems: tuple[RuleProblem, ...] = ()


def lookback_s(rules: Sequence[Rule], lateness: float) -> float:
    """How much history rebuilds the state of every rule."""
    need = max((entry_of(r.kind).lookback(r) for r in rules), default=0.0)
    return need + lateness + 60.0


def replay_metrics(rules: Sequence[Rule]) -> list[str]:
    return sorted(
        {m for r in rules if entry_of(r.kind).replayed for m in replay_metrics_of(r) or ()}
    )


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
        supervisor: Supervisor | None = None,
        guard: CommitGuard | None = None,
        replay: ReplaySource | None = None,
    ) -> None:
        self.settings = settings
        self.guard = guard
        self.replay: ReplaySource = replay or stream_readings
        self.supervisor = supervisor or Supervisor()
        self.pool = pool
        self.directory = directory
        self._directory_changed = threading.Event()
        self.sinks = tuple(sinks)
        self.clock = clock
        self.metrics = RulesMetrics(registry)
        self.ruleset = RuleSet((), {})
        self._queue: queue.Queue[_Work] = queue.Queue(settings.queue_max_batches)
        self.metrics.queue_capacity.set(settings.queue_max_batches)
        self.metrics.queue_depth.set_function(self._queue.qsize)
        self._engine: Engine | None = None
        self._stop = threading.Event()
        self._worker: Supervised | None = None
        self._next_tick = 0.0
        self._next_refresh = 0.0
        self._unsaved: list[ClueOp] = []
        self._barriers: list[threading.Event] = []
        # With a guard: readings evaluated and not yet committed, and their callbacks.
        self._evaluated: list[Reading] = []
        self._done: list[Callable[[], None]] = []
        self._reload_lock = threading.Lock()
        self._health_lock = threading.Lock()
        self._rule_health: dict[str, RuleHealth] = {}

    # -- sinks of ingest and video (called from their threads) ------------------------

    def readings_committed(self, readings: Sequence[Reading]) -> None:
        self._put(_Readings(list(readings)))

    def evaluate(self, readings: Sequence[Reading], done: Callable[[], None]) -> None:
        """Readings straight from the broker (an engine process of its own): `done` runs
        after the commit of the transitions they caused, in the order they were given."""
        self._put(_Readings(list(readings), done))

    def detections_observed(self, detections: Sequence[Detection]) -> None:
        self._put(_Detections(list(detections)))

    def status_changed(self, status: DeviceStatus) -> None:
        self._put(_Status(status))

    def _put(self, work: _Work) -> None:
        # Blocks while the queue is full (see the module docstring); gives up only on stop.
        while not self._stop.is_set():
            try:
                self._queue.put(work, timeout=0.5)
                return
            except queue.Full:
                continue

    # -- ClueLedger -------------------------------------------------------------------

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
        self._next_tick = self.clock() + self.settings.tick_interval_s
        self._next_refresh = time.monotonic() + self.settings.directory_refresh_s
        # A turn can rebuild the whole state (a reload): stuck only well past that.
        self._worker = self.supervisor.start("rules-engine", self._step, stall_s=300.0)

    def stop(self, timeout: float = 30.0) -> bool:
        """Evaluate what is queued, then stop; False when the thread did not end in time."""
        self._stop.set()
        return self.supervisor.retire(self._worker, timeout)

    @property
    def running(self) -> bool:
        return self._worker is not None and self._worker.running

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
            kept = len(self.ruleset.rules)
            if not self.running:
                return self._refused("the rules engine is not running; see /readyz", kept)
            job = _ReloadJob(ruleset, threading.Event())
            self._put(_Reload(job))
            if not job.done.wait(RELOAD_WAIT_S):
                return self._refused(
                    f"the rule state was not rebuilt within {RELOAD_WAIT_S:.0f} s; the engine"
                    " is busy or stuck (see /readyz), the reload still runs when it gets to it",
                    kept,
                )
            if job.error is not None:
                return self._refused(f"rebuilding the rule state failed: {job.error}", kept)
            log.info("rules reloaded: %d rules", len(ruleset.rules))
            return ReloadResult(True, len(ruleset.rules))

    def _refused(self, why: str, kept: int) -> ReloadResult:
        self.metrics.reload_failures.inc()
        log.error("rule reload refused: %s", why)
        return ReloadResult(False, kept, (RuleProblem("(reload)", None, why),))

    def _rule_failed(self, rule_id: str, err: Exception) -> None:
        """Engine callback (engine thread): count, log (once per rule per hold), show."""
        now = time.monotonic()
        with self._health_lock:
            old = self._rule_health.get(rule_id)
            self._rule_health[rule_id] = RuleHealth(
                rule_id, (old.errors if old else 0) + 1, f"{type(err).__name__}: {err}", now
            )
        self.metrics.rule_errors.labels(rule_id).inc()
        self.metrics.rule_up.labels(rule_id).set(0)
        if old is None or now - old.last_at > RULE_ERROR_HOLD_S:
            log.error("rule %s raised; its stream skips the input, other rules go on",
                      rule_id, exc_info=err)  # fmt: skip

    def failing_rules(self) -> list[RuleHealth]:
        """Rules that raised within the last five minutes."""
        now = time.monotonic()
        with self._health_lock:
            recent = [h for h in self._rule_health.values() if now - h.last_at <= RULE_ERROR_HOLD_S]
        for h in self._rule_health.values():
            if h not in recent:
                self.metrics.rule_up.labels(h.rule_id).set(1)
        return sorted(recent, key=lambda h: h.rule_id)

    def tick_now(self) -> None:
        """Run the timer tick at the next turn of the engine thread (tests, dry tools)."""
        self._put(_Tick())

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """True once everything queued so far is evaluated and committed (tests, bench)."""
        done = threading.Event()
        self._put(_Barrier(done))
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
            on_rule_error=self._rule_failed,
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
            readings = self.replay(conn, metrics, since) if metrics else iter(())
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

    def _step(self) -> bool:
        """One turn of the engine thread: a batch of work, the tick, the commit."""
        timeout = max(0.0, min(self._next_tick - self.clock(), self.settings.tick_interval_s))
        try:
            work: _Work | None = self._queue.get(timeout=timeout)
        except queue.Empty:
            work = None
            if self._stop.is_set():
                return False
        # Kept on the service until committed: a fault that escapes a turn (the supervisor
        # restarts it) must not lose transitions the engine's state already reflects.
        ops = self._unsaved
        barriers = self._barriers
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
        if now >= self._next_tick and self._engine is not None:
            ops += self._engine.tick(now)
            self._next_tick = now + self.settings.tick_interval_s
        changed = self._directory_changed.is_set()
        if (changed or time.monotonic() >= self._next_refresh) and self._engine is not None:
            self._directory_changed.clear()
            self._engine.invalidate_directory()
            self._next_refresh = time.monotonic() + self.settings.directory_refresh_s
        done = self._done
        with_guard = self.guard is not None and (self._evaluated or done)
        if (ops or with_guard) and not self._commit(ops, self._evaluated):
            return not self._stop.is_set()  # given up on stop: nothing acknowledged
        self._unsaved = []
        self._barriers = []
        self._evaluated = []
        self._done = []
        for b in barriers:
            b.set()
        for callback in done:
            callback()
        return True

    def _handle(self, work: _Work, ops: list[ClueOp], barriers: list[threading.Event]) -> None:
        engine = self._engine
        assert engine is not None
        try:
            match work:
                case _Readings(readings, done):
                    if done is not None:
                        self._done.append(done)
                    if self.guard is not None:
                        self._evaluated += readings
                    ops += engine.on_readings(readings)
                    if readings:
                        newest = max(r.time for r in readings).timestamp()
                        self.metrics.evaluation_lag.observe(max(0.0, self.clock() - newest))
                case _Detections(detections):
                    ops += engine.on_detections(detections)
                case _Status(status):
                    engine.on_status(status)
                case _Tick():
                    ops += engine.tick(self.clock())
                case _Barrier(done):
                    barriers.append(done)
                case _Reload(job):
                    self._reload_now(job, ops)
                case _:
                    assert_never(work)
        except Exception:
            # A bug in one rule must not stop evaluation of everything else.
            log.exception("rule evaluation failed for a %s", type(work).__name__.lstrip("_"))

    def _reload_now(self, job: _ReloadJob, ops: list[ClueOp]) -> None:
        """Engine thread: swap in the new set, or keep the old one and say why."""
        try:
            if ops:
                self._commit(ops)
                ops.clear()
            self._engine = self._build_engine(job.ruleset)
            self.ruleset = job.ruleset
            self.metrics.rules_loaded.set(len(job.ruleset.rules))
        except Exception as err:
            job.error = f"{type(err).__name__}: {err}"
            log.exception("rebuilding the rule state for a reload failed; the old set stays")
        finally:
            job.done.set()

    def _commit(self, ops: list[ClueOp], evaluated: Sequence[Reading] = ()) -> bool:
        """Commit the transitions (and, with a guard, its check and record); False when
        stopping made us give up."""
        delay = 0.2
        while True:
            try:
                with self.pool.connection() as conn, conn.transaction():
                    if self.guard is not None:
                        self.guard.in_commit(conn, evaluated)
                    events = apply_ops(conn, ops) if ops else []
                break
            except psycopg.Error as err:
                self.metrics.store_errors.inc()
                log.warning("clue transitions not committed, retrying: %s", err)
                if self._stop.wait(delay):
                    # Lost only from memory: at start the rebuild re-opens what is firing.
                    log.error("stopping with %d uncommitted clue transitions", len(ops))
                    return False
                delay = min(delay * 2, 10.0)
        now = self.clock()
        for op, event in events:
            labels = (event.rule_id, event.department)
            if op.action in (ClueAction.OPEN, ClueAction.CLOSED):
                self.metrics.clues_opened.labels(*labels).inc()
            if op.action == ClueAction.OPEN:
                self.metrics.clue_latency.observe(max(0.0, now - op.at))
            if event.status is ClueStatus.RESOLVED:
                self.metrics.clues_resolved.labels(*labels).inc()
        self._hand_off([event for _op, event in events])
        return True

    def _hand_off(self, events: list[ClueEvent]) -> None:
        for event in events:
            for sink in self.sinks:
                try:
                    sink.clue_changed(event)
                except Exception:
                    self.metrics.sink_errors.inc()
                    log.exception("clue sink %r failed on clue %s", sink, event.clue_id)
