"""Detections of a leased worker, written only while it holds the camera (fenced).

`video_detections` is the durable hand-off of detection updates to an engine in another
process: each batch is written in the transaction that checked this worker's lease on the
camera (holder, epoch, not expired), so a worker that lost a camera writes nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from video.leases import CameraLeases
from video.metrics import VideoMetrics
from video.models import Box, Detection

log = logging.getLogger(__name__)

# Writers of video_detections serialise on this transaction lock before drawing ids.
DETECTIONS_LOCK_KEY = 0x0DE7EC7


class DetectionLog:
    def __init__(self, pool: ConnectionPool, leases: CameraLeases, metrics: VideoMetrics) -> None:
        self.pool = pool
        self.leases = leases
        self.metrics = metrics

    def record(self, camera_id: str, epoch: int, detections: Sequence[Detection]) -> bool:
        """Write the batch if this worker still holds the camera under `epoch`; False (and
        counted) when it does not."""
        with self.pool.connection() as conn, conn.transaction():
            if not self.leases.check(conn, camera_id, epoch):
                self.metrics.detections_fenced.inc(len(detections))
                log.warning("camera %s: %d detection updates not written: lease epoch %d is"
                            " no longer this worker's", camera_id, len(detections),
                            epoch)  # fmt: skip
                return False
            # Ids commit in the order they are drawn: the reader's watermark skips nothing.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (DETECTIONS_LOCK_KEY,))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO video_detections (camera_id, label, score, box, zone, time,"
                    " episode_id, frames, evidence_id, worker_id, epoch)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        (
                            d.camera_id,
                            d.label,
                            d.score,
                            [d.box.x, d.box.y, d.box.w, d.box.h],
                            d.zone,
                            d.time,
                            d.episode_id,
                            d.frames,
                            d.evidence_id,
                            self.leases.worker_id,
                            epoch,
                        )
                        for d in detections
                    ],
                )
        return True

    def apply_retention(self, keep: timedelta) -> int:
        with self.pool.connection() as conn:
            cur = conn.execute(
                "DELETE FROM video_detections WHERE recorded_at < now() - %s", (keep,)
            )
            return cur.rowcount


def detections_after(
    conn: psycopg.Connection[Any], after_id: int, limit: int = 1000
) -> list[tuple[int, Detection]]:
    """Detections written after `after_id`, in order: what an engine in another process reads
    (it keeps its own watermark)."""
    rows = conn.execute(
        "SELECT id, camera_id, label, score, box, zone, time, episode_id, frames, evidence_id"
        " FROM video_detections WHERE id > %s ORDER BY id LIMIT %s",
        (after_id, limit),
    ).fetchall()
    return [(r[0], _detection(r)) for r in rows]


def _detection(r: tuple[Any, ...]) -> Detection:
    box: list[int] = r[4]
    at: datetime = r[6]
    return Detection(r[1], r[2], float(r[3]), Box(*box), r[5], at, r[7], int(r[8]), r[9])
