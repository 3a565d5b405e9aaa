"""A guarded loop per worker: errors logged and counted, restarts rate-limited, health shown.

A worker is a `step` function the supervisor calls again and again on the worker's own
thread; each return is progress. `step` returns False when the worker has finished (its
service asked it to stop and it has drained). When `step` raises, the error is logged and
counted, the worker is marked down, and it is started again after a backoff that doubles
with each failure in a row (from `restart_min_s` to `restart_max_s`), so a worker failing on
every turn neither spins nor dies. A worker is unhealthy while down, and while a step has
run longer than its `stall_s` (stuck: blocked, or looping without returning).

This package imports nothing of offsite's, so every domain package may use it; the
composition root passes one Supervisor to all of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

log = logging.getLogger(__name__)

Step = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class WorkerHealth:
    """What /readyz and the metrics say about one worker."""

    name: str
    alive: bool  # its thread runs and its last step did not fail
    stalled: bool  # a step has run longer than the worker's stall limit
    restarts: int
    errors: int
    last_progress: float  # wall-clock seconds of the last completed step
    last_error: str

    @property
    def healthy(self) -> bool:
        return self.alive and not self.stalled

    @property
    def reason(self) -> str:
        if not self.alive:
            return f"down: {self.last_error or 'not running'}"
        if self.stalled:
            return "stuck: no progress"
        return "ok"


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge(
            "offsite_worker_up",
            "1 while the worker runs and makes progress, 0 while it is down or stuck",
            ["worker"],
            registry=registry,
        )
        self.restarts = Counter(
            "offsite_worker_restarts_total",
            "Restarts of a worker after an error",
            ["worker"],
            registry=registry,
        )
        self.errors = Counter(
            "offsite_worker_errors_total",
            "Errors that escaped a worker's step",
            ["worker"],
            registry=registry,
        )
        self.last_progress = Gauge(
            "offsite_worker_last_progress_timestamp_seconds",
            "When the worker last completed a step (Unix time)",
            ["worker"],
            registry=registry,
        )


class Supervised:
    """One worker: its thread, its step and its health."""

    def __init__(
        self,
        supervisor: Supervisor,
        name: str,
        step: Step,
        stall_s: float,
        restart_min_s: float,
        restart_max_s: float,
    ) -> None:
        self.name = name
        self._sup = supervisor
        self._step = step
        self.stall_s = stall_s
        self.restart_min_s = restart_min_s
        self.restart_max_s = restart_max_s
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.restarts = 0
        self.errors = 0
        self.failed = False
        self.last_error = ""
        self.step_started = supervisor.clock()
        self.last_progress = supervisor.wall()
        self.finished = False

    def start(self) -> None:
        self._cancel.clear()
        self.finished = False
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the worker to finish; True when it did. Cancels restart backoffs."""
        self._cancel.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        sup, m = self._sup, self._sup.metrics
        failures = 0
        while True:
            self.step_started = sup.clock()
            try:
                more = self._step()
            except Exception as err:
                failures += 1
                self.errors += 1
                self.failed = True
                self.last_error = f"{type(err).__name__}: {err}"
                m.errors.labels(self.name).inc()
                wait = min(self.restart_min_s * 2 ** (failures - 1), self.restart_max_s)
                log.exception("worker %s failed; restarting it in %.1f s", self.name, wait)
                if self._cancel.wait(wait):
                    log.error("worker %s stopped while restarting after: %s",
                              self.name, self.last_error)  # fmt: skip
                    return
                self.restarts += 1
                m.restarts.labels(self.name).inc()
                # Down while waiting to restart; running again from here. A worker whose one
                # step is a long loop would otherwise look down until it stopped.
                self.failed = False
                continue
            if failures:
                log.info("worker %s is running again", self.name)
            failures = 0
            self.last_progress = sup.wall()
            m.last_progress.labels(self.name).set(self.last_progress)
            if not more:
                self.finished = True
                return

    def health(self) -> WorkerHealth:
        alive = (self.running or self.finished) and not self.failed
        stalled = alive and self.running and self._sup.clock() - self.step_started > self.stall_s
        return WorkerHealth(
            self.name,
            alive,
            stalled,
            self.restarts,
            self.errors,
            self.last_progress,
            self.last_error,
        )


class Supervisor:
    """Starts workers, restarts them when they fail and reports how each is doing."""

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = _Metrics(registry if registry is not None else CollectorRegistry())
        self.clock = clock
        self.wall = wall
        self._workers: dict[str, Supervised] = {}
        self._lock = threading.Lock()

    def start(
        self,
        name: str,
        step: Step,
        stall_s: float = 60.0,
        restart_min_s: float = 0.5,
        restart_max_s: float = 30.0,
    ) -> Supervised:
        """Run `step` over and over on a thread called `name` (unique among workers)."""
        worker = Supervised(self, name, step, stall_s, restart_min_s, restart_max_s)
        with self._lock:
            old = self._workers.get(name)
            if old is not None and old.running:
                raise ValueError(f"a worker named {name!r} is already running")
            self._workers[name] = worker
        self.metrics.last_progress.labels(name).set(worker.last_progress)
        self.metrics.up.labels(name).set_function(lambda: 1.0 if worker.health().healthy else 0.0)
        worker.start()
        return worker

    def retire(self, worker: Supervised | None, timeout: float) -> bool:
        """Wait up to `timeout` for a worker its service asked to stop, and forget it once it
        has ended; True when it ended (or was never started). One still running stays in the
        health report, where it shows as stuck."""
        if worker is None:
            return True
        ended = worker.join(timeout)
        if ended:
            self.forget(worker)
        return ended

    def forget(self, worker: Supervised) -> None:
        """A stopped worker leaves the health report (its service stopped on purpose)."""
        with self._lock:
            if self._workers.get(worker.name) is worker:
                del self._workers[worker.name]
                self.metrics.up.remove(worker.name)

    def health(self) -> list[WorkerHealth]:
        with self._lock:
            workers = list(self._workers.values())
        return sorted((w.health() for w in workers), key=lambda h: h.name)
