"""The engine role of a process that does not run ingest: standby until it wins the lease,
then the one active engine (rules, alerts, outbox delivery, storage upkeep).

An engine that loses its lease (its lock session ended, the epoch moved, or it could not
confirm it within `lease_timeout_s`) exits at once with EXIT_LEASE_LOST: nothing it holds
in memory is needed (state is a cache of the database, unacknowledged messages stay at the
broker), and a process that is gone cannot write. Its supervisor (systemd, compose) starts
it again as a standby.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from failover import progress
from failover.feed import EngineFeed
from failover.lease import FencedError, Lease
from failover.metrics import EngineMetrics
from failover.settings import EngineSettings
from ingest.models import Reading
from ingest.replay import stream_readings

log = logging.getLogger(__name__)

EXIT_LEASE_LOST = 75  # EX_TEMPFAIL: start again (as a standby)


class EngineState(StrEnum):
    STANDBY = "standby"
    ACTIVE = "active"


class EngineRole:
    """Elects this process, then starts the engine's parts; see the module docstring.

    The composition root builds the rule service with this role as its guard and replay
    source, and the alerts with its fence; `start` gets how to build the feed and how to
    start the engine's services once the lease is won.
    """

    def __init__(
        self,
        settings: EngineSettings,
        conninfo: str,
        pool: ConnectionPool,
        metrics: EngineMetrics,
        exit_process: Callable[[int], None] = os._exit,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.lease = Lease(conninfo, settings, self.holder)
        self._make_feed: Callable[[], EngineFeed] | None = None
        self._activate: Callable[[], None] | None = None
        self._exit = exit_process
        self.state = EngineState.STANDBY
        self.feed: EngineFeed | None = None
        # Marks loaded at takeover; the rebuild reads up to them (None: a fresh session).
        self._replay_marks = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost = threading.Event()
        metrics.active.set(0)
        metrics.epoch.set(0)

    # -- hooks the rule service calls -------------------------------------------------

    def in_commit(self, conn: psycopg.Connection[Any], evaluated: Sequence[Reading]) -> None:
        """rules.service.CommitGuard: fence, then record how far the streams were read."""
        try:
            self.lease.fence(conn)
        except FencedError as err:
            self.lost(str(err))
            raise
        progress.record(conn, progress.newest_by_device(evaluated))

    def replay(
        self, conn: psycopg.Connection[Any], metrics: Sequence[str], since: datetime
    ) -> Iterator[Reading]:
        """rules.service.ReplaySource: what the previous engine evaluated, or (a fresh broker
        session: nothing is queued for us) everything stored."""
        if self._replay_marks:
            return progress.evaluated_readings(conn, metrics, since)
        return stream_readings(conn, metrics, since)

    def fence(self, conn: psycopg.Connection[Any]) -> None:
        """For the outbox claim."""
        try:
            self.lease.fence(conn)
        except FencedError as err:
            self.lost(str(err))
            raise

    # -- lifecycle --------------------------------------------------------------------

    def start(self, make_feed: Callable[[], EngineFeed], activate: Callable[[], None]) -> None:
        self._make_feed, self._activate = make_feed, activate
        self._thread = threading.Thread(target=self._run, name="engine-lease", daemon=True)
        self._thread.start()

    def stop_feed(self) -> bool:
        """First of a clean stop (SIGTERM): no new messages; the election thread ends."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.feed is not None:
            self.feed.stop()
        return self._thread is None or not self._thread.is_alive()

    def release(self) -> None:
        """Last of a clean stop, once the rules and alerts committed what they hold: let go
        of the lock so a standby takes over at once."""
        self.lease.close()
        self.metrics.active.set(0)

    def readiness(self) -> dict[str, bool]:
        """A standby is ready as a standby (200), not failed: the check's name says which."""
        feed_ok = self.state is EngineState.STANDBY or (
            self.feed is not None and self.feed.connected
        )
        return {f"engine:{self.state.value}": not self._lost.is_set() and feed_ok}

    def lost(self, why: str) -> None:
        """The lease is gone: exit now, before anything else is written or acknowledged."""
        if self._stop.is_set():
            return
        self._lost.set()
        self.metrics.active.set(0)
        log.critical("engine lease lost (%s): exiting so a standby can take over", why)
        print(f"offsite: engine lease lost ({why}); exiting", file=sys.stderr, flush=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(EXIT_LEASE_LOST)

    def _run(self) -> None:
        delay = self.settings.poll_s
        while not self._stop.is_set():
            try:
                epoch = self.lease.try_acquire()
            except psycopg.Error as err:
                log.warning("engine lease: database not reachable (%s); retrying", err)
                self.lease.close()
                self._stop.wait(min(delay, 10.0))
                delay = min(delay * 2, 10.0)
                continue
            delay = self.settings.poll_s
            if epoch is not None:
                break
            self._stop.wait(self.settings.poll_s)
        else:
            return
        try:
            self._take_over(epoch)
        except Exception as err:
            # Holding the lock without evaluating would keep every standby out: let go.
            log.exception("taking over failed")
            self.lost(f"taking over failed: {type(err).__name__}: {err}")
            return
        self._watch()

    def _take_over(self, epoch: int) -> None:
        won = time.monotonic()
        log.warning("engine lease won (epoch %d, %s): taking over", epoch, self.holder)
        self.metrics.epoch.set(epoch)
        assert self._make_feed is not None
        assert self._activate is not None
        with self.pool.connection() as conn:
            marks = progress.load(conn)
        feed = self._make_feed()
        feed.marks.update(marks)
        self.feed = feed
        # Connect first: whether the broker kept our session decides what to rebuild from.
        # Messages that arrive meanwhile wait in the rules queue until its thread starts.
        feed.start()
        if not feed.wait_connected(self.settings.lease_timeout_s):
            log.warning("the broker did not answer the engine within %.0f s; rebuilding as if"
                        " it kept the session", self.settings.lease_timeout_s)  # fmt: skip
        self._replay_marks = feed.session_present is not False
        self._activate()
        took = time.monotonic() - won
        self.state = EngineState.ACTIVE
        self.metrics.active.set(1)
        self.metrics.takeovers.inc()
        self.metrics.takeover_seconds.set(took)
        level = logging.WARNING if took > self.settings.takeover_target_s else logging.INFO
        log.log(level, "engine active (epoch %d) %.2f s after winning the lease", epoch, took)

    def _watch(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.settings.check_s):
            try:
                if not self.lease.confirm():
                    self.lost("the lock or the epoch is no longer ours")
                    return
                last_ok = time.monotonic()
            except psycopg.Error as err:
                # The lock lives in this session: if the session is gone, so is the lock.
                if not self.lease.session_open:
                    self.lost(f"the lock's database session ended: {err}")
                    return
                if time.monotonic() - last_ok > self.settings.lease_timeout_s:
                    self.lost(f"no confirmation for {self.settings.lease_timeout_s:g} s: {err}")
                    return
