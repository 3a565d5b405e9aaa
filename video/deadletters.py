"""Rejected frames into the dead_letters table, from a thread with a bounded queue."""

from __future__ import annotations

import contextlib
import logging
import queue
from dataclasses import dataclass

import psycopg
from psycopg_pool import ConnectionPool

from ingest import deadletters
from ingest.deadletters import StoredLetter
from supervise.worker import Supervised, Supervisor
from video.frames import FrameRejectReason
from video.metrics import VideoMetrics

log = logging.getLogger(__name__)

_BATCH = 100


@dataclass(frozen=True, slots=True)
class FrameDeadLetter:
    topic: str
    camera_id: str
    reason: FrameRejectReason
    detail: str
    payload: bytes


def frames_topic(camera_id: str) -> str:
    return f"offsite/v1/devices/{camera_id}/frames"


class DeadLetterWriter:
    """`put` never blocks (the MQTT thread calls it); a full queue loses letters, counted."""

    def __init__(
        self,
        pool: ConnectionPool,
        metrics: VideoMetrics,
        payload_cap: int,
        capacity: int,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.payload_cap = payload_cap
        self._queue: queue.Queue[FrameDeadLetter | None] = queue.Queue(capacity)
        self.supervisor = supervisor or Supervisor()
        self._worker: Supervised | None = None

    def put(self, letter: FrameDeadLetter) -> None:
        self.metrics.frames_rejected.labels(letter.reason.value).inc()
        log.info("frame from %s dead-lettered: %s (%s)", letter.camera_id, letter.reason,
                 letter.detail)  # fmt: skip
        try:
            self._queue.put_nowait(letter)
        except queue.Full:
            self.metrics.dead_letters_lost.inc()

    def start(self) -> None:
        self._worker = self.supervisor.start("video-dead-letters", self._step)

    def stop(self) -> None:
        if self._worker is not None:
            # Bounded: with the database gone the queue may stay full; then give up waiting.
            with contextlib.suppress(queue.Full):
                self._queue.put(None, timeout=10)
            self.supervisor.retire(self._worker, 10)

    def _step(self) -> bool:
        try:
            first = self._queue.get(timeout=1.0)
        except queue.Empty:
            return True
        if first is None:
            return False
        batch = [first]
        stop = False
        while len(batch) < _BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            batch.append(item)
        self._write(batch)
        return not stop

    def _write(self, batch: list[FrameDeadLetter]) -> None:
        letters = [
            StoredLetter(d.topic, d.camera_id, d.reason.value, d.detail, d.payload) for d in batch
        ]
        try:
            with self.pool.connection() as conn:
                deadletters.store(conn, letters, self.payload_cap)
        except psycopg.Error as err:
            # Frames are lossy; a dead letter is a courtesy to the integrator, not data.
            log.warning("could not write %d frame dead letters: %s", len(batch), err)
            self.metrics.dead_letters_lost.inc(len(batch))
