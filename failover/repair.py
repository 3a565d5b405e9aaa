"""Readings a broker restart kept from ingest, stored from the engine's own stream.

Measured with Mosquitto 2.0.11 (docs/operators.md): after a restart, a persistent shared
subscription is active again only once one of its members reconnects, so a message published
in that gap reaches no ingest process although the device got its PUBACK; across its own
restart the broker has also dropped a few messages it had in flight to shared members. The
engine's subscription is not shared and gets every one of them. So for `repair_window_s`
after each (re)connect of the engine's subscription, and for what it received in the same
span before a disconnect, the engine stores the readings it is handed that are not stored
yet (`ingest.writer.store_missing`: a stored value wins), before the rules see them and so
before they are acknowledged. Outside those windows it writes nothing.

Order is kept: while anything is waiting here, every message (status and skipped ones too)
waits behind it, so the rules see the stream in the order the broker sent it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from failover.metrics import EngineMetrics
from ingest.models import Reading
from supervise.worker import Supervised, Supervisor

log = logging.getLogger(__name__)

# Readings stored in one transaction at most; more wait for the next.
_BATCH = 5000

Then = Callable[[], None] | None


class GapRepair:
    """Stores readings of the engine's stream that ingest may have missed, in windows."""

    def __init__(
        self,
        store: Callable[[Sequence[Reading]], int],
        window_s: float,
        metrics: EngineMetrics,
        supervisor: Supervisor | None = None,
    ) -> None:
        self._store = store
        self.window_s = window_s
        self.metrics = metrics
        self.supervisor = supervisor or Supervisor()
        self._until = 0.0
        self._lock = threading.Lock()
        self._pending = 0
        self._queue: queue.Queue[tuple[Sequence[Reading], Then]] = queue.Queue()
        # What arrived lately: stored again at a disconnect (the broker may be restarting
        # and drop what it had in flight to ingest).
        self._recent: deque[tuple[float, Sequence[Reading]]] = deque()
        self._worker: Supervised | None = None
        self._stop = threading.Event()
        self._delay = 0.5

    def start(self) -> None:
        if self.window_s > 0:
            self._worker = self.supervisor.start("engine-gap-repair", self._step)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._worker is not None and self._worker.join(timeout):
            self.supervisor.forget(self._worker)

    def connected(self) -> None:
        """The subscription is (back) on the broker: a window opens."""
        if self.window_s > 0:
            self._until = time.monotonic() + self.window_s

    def disconnected(self) -> None:
        """The broker went away: what arrived in the last window is checked too."""
        if self.window_s <= 0:
            return
        with self._lock:
            recent = [r for _t, rows in self._recent for r in rows]
            self._recent.clear()
        if recent:
            self._put(recent, None)

    def hand(self, readings: Sequence[Reading], then: Callable[[], None]) -> None:
        """Run `then` once `readings` are stored where a window is open or others wait;
        at once otherwise (the common case: no write)."""
        if self.window_s <= 0:
            then()
            return
        now = time.monotonic()
        with self._lock:
            if readings:
                self._recent.append((now, readings))
                while self._recent and self._recent[0][0] < now - self.window_s:
                    self._recent.popleft()
            waiting = self._pending > 0
        if now < self._until or waiting:
            self._put(readings, then)
        else:
            then()

    def _put(self, readings: Sequence[Reading], then: Then) -> None:
        with self._lock:
            self._pending += 1
        self._queue.put((readings, then))

    def _step(self) -> bool:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return not self._stop.is_set()
        items = [first]
        count = len(first[0])
        while count < _BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            count += len(item[0])
        rows = [r for readings, _ in items for r in readings]
        while True:
            try:
                added = self._store(rows)
                break
            except Exception as err:
                # The database is away: the rules could not commit either. Nothing here is
                # acknowledged yet, so waiting loses nothing.
                log.warning("engine gap repair: %d readings not stored yet, retrying: %s",
                            len(rows), err)  # fmt: skip
                if self._stop.wait(self._delay):
                    return False
                self._delay = min(self._delay * 2, 10.0)
        self._delay = 0.5
        if added:
            self.metrics.gap_stored.inc(added)
            log.warning("engine gap repair: stored %d readings ingest had not", added)
        for _readings, then in items:
            if then is None:
                continue
            try:
                then()
            except Exception:
                log.exception("engine gap repair: handing a message on failed")
        with self._lock:
            self._pending -= len(items)
        return True
