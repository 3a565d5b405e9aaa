"""Pacing and the publish window: a token bucket and the ledger of unacknowledged messages."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum


class TokenBucket:
    """Pacing at `rate` per second with bursts of at most `burst`; `now` is passed in."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.tokens = 1.0
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; 0.0 when taken, else the seconds until one is due (none taken)."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        # A token refilled by exactly the advised wait can fall short by a rounding error.
        if self.tokens >= 1.0 - 1e-9:
            self.tokens = max(0.0, self.tokens - 1.0)
            return 0.0
        return (1.0 - self.tokens) / self.rate


class Kind(StrEnum):
    TELEMETRY = "telemetry"
    FRAME = "frame"
    STATUS = "status"


@dataclass(slots=True)
class _Counts:
    sent: int = 0
    acked: int = 0
    failed: int = 0


@dataclass(slots=True)
class _Ledger:
    """Outstanding publishes and their outcome, shared by the publisher threads and paho's."""

    limit: int
    counts: dict[Kind, _Counts] = field(default_factory=lambda: {k: _Counts() for k in Kind})
    pending: dict[int, Kind] = field(default_factory=dict)
    # An ack can arrive before publish() has returned its mid to us; it waits here.
    early: dict[int, bool] = field(default_factory=dict)
    peak: int = 0
    inflight: int = 0
    failures: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for_room(self, stop: threading.Event, deadline: float | None = None) -> bool:
        """Wait until the window has room; False when `stop` is set or `deadline` passes."""
        with self.cond:
            while self.inflight >= self.limit:
                if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    return False
                self.cond.wait(0.1)
        return True

    def sent(self, mid: int, kind: Kind) -> None:
        with self.cond:
            self.counts[kind].sent += 1
            self.inflight += 1
            ok = self.early.pop(mid, None)
            if ok is None:
                self.pending[mid] = kind
            else:
                self._settle(kind, ok)
            self.peak = max(self.peak, self.inflight)

    def completed(self, mid: int, ok: bool, reason: str) -> None:
        with self.cond:
            if not ok and len(self.failures) < 10:
                self.failures.append(reason)
            kind = self.pending.pop(mid, None)
            if kind is None:
                self.early[mid] = ok
            else:
                self._settle(kind, ok)

    def abandon(self) -> None:
        """Count everything still unacknowledged as failed (the drain timed out)."""
        with self.cond:
            for kind in self.pending.values():
                self.counts[kind].failed += 1
                self.inflight -= 1
            if self.pending and len(self.failures) < 10:
                self.failures.append(f"{len(self.pending)} messages never acknowledged")
            self.pending.clear()

    def _settle(self, kind: Kind, ok: bool) -> None:
        c = self.counts[kind]
        self.inflight -= 1
        if ok:
            c.acked += 1
        else:
            c.failed += 1
        self.cond.notify_all()

    def wait_drained(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait until nothing is outstanding; False at the timeout or when `stop` is set."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return False
                self.cond.wait(min(left, 0.1))
        return True
