"""Detections of the video workers to the engine's rules, in order, past a durable watermark.

With camera leases a camera may be analysed by any video worker, in any process; each writes
its detections to `video_detections` (fenced by its lease). The relay, run by the engine,
reads them in id order past `video_detection_watermark` and hands them to the rules; the
watermark moves in the same transaction, after the hand-off, so a crash re-delivers the last
batch rather than losing it. The watermark row is locked while a batch is handed over, so
two relays never hand over the same batch (run it only in the one active engine).
"""

from __future__ import annotations

import logging
import threading

import psycopg
from psycopg_pool import ConnectionPool

from supervise.worker import Supervised, Supervisor
from video.detections import detections_after
from video.models import DetectionSink

log = logging.getLogger(__name__)


class DetectionRelay:
    def __init__(
        self,
        pool: ConnectionPool,
        sink: DetectionSink,
        supervisor: Supervisor | None = None,
        poll_s: float = 0.5,
        batch: int = 500,
    ) -> None:
        self.pool = pool
        self.sink = sink
        self.supervisor = supervisor or Supervisor()
        self.poll_s = poll_s
        self.batch = batch
        self._stop = threading.Event()
        self._worker: Supervised | None = None

    def start(self) -> None:
        self._worker = self.supervisor.start("video-detection-relay", self._step)

    def stop(self) -> bool:
        self._stop.set()
        return self.supervisor.retire(self._worker, 10)

    def _step(self) -> bool:
        if self._stop.wait(self.poll_s):
            return False
        try:
            while self.relay_once() == self.batch and not self._stop.is_set():
                pass  # a backlog: keep going without waiting
        except psycopg.Error as err:
            log.warning("video detections not relayed to the rules; will retry: %s", err)
        return True

    def relay_once(self) -> int:
        """Hand over the next batch; returns how many detections it held."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT last_id FROM video_detection_watermark FOR UPDATE"
            ).fetchone()
            last = int(row[0]) if row else 0
            found = detections_after(conn, last, self.batch)
            if not found:
                return 0
            self.sink.detections_observed([d for _, d in found])
            conn.execute("UPDATE video_detection_watermark SET last_id = %s", (found[-1][0],))
        return len(found)
