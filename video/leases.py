"""Camera leases in PostgreSQL: each camera is analysed by one video worker at a time.

A worker registers itself in `video_workers` and, on every heartbeat, renews the leases it
holds, gives back those above its fair share (ceil(cameras / live workers)) and takes free or
expired ones up to it. A worker that dies stops renewing; after `lease_s` its cameras are
free and the others take them. Every acquisition adds one to the lease's `epoch`, the fencing
token: writes for a camera check (holder, epoch, not expired) in their own transaction, so a
worker that lost a camera (stalled, cut off) writes nothing for it.

Times are the database's (`now()`), so the workers' clocks never matter. Locally a lease is
trusted only until `lease_s` after its last successful renewal (monotonic clock): a worker
cut off from the database stops analysing before anyone else can take its cameras.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

from video.metrics import VideoMetrics
from video.settings import LeaseSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lease:
    camera_id: str
    epoch: int


class LeaseListener(Protocol):
    """Told when this worker starts and stops holding cameras (on the heartbeat thread)."""

    def leases_acquired(self, leases: Sequence[Lease]) -> None: ...

    def leases_ended(self, camera_ids: Sequence[str]) -> None: ...


@dataclass(slots=True)
class _FrameTally:
    """Frames analysed under one lease since the last heartbeat (flushed to its tenure)."""

    epoch: int
    frames: int
    first: float
    last: float


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class CameraLeases:
    """This worker's side of the lease table. Thread-safe: `holds`/`epoch_of` run on the
    MQTT and result threads, `heartbeat` on its own."""

    def __init__(
        self,
        settings: LeaseSettings,
        camera_ids: Sequence[str],
        pool: ConnectionPool,
        metrics: VideoMetrics,
        listener: LeaseListener | None = None,
    ) -> None:
        self.settings = settings
        self.worker_id = settings.worker_id or default_worker_id()
        self.camera_ids = sorted(camera_ids)
        self.pool = pool
        self.metrics = metrics
        self.listener = listener
        self._lease = timedelta(seconds=settings.lease_s)
        self._held: dict[str, int] = {}  # camera -> epoch
        self._renewed_at = 0.0  # monotonic time of the last successful renewal
        self._tally: dict[str, _FrameTally] = {}
        self._lock = threading.Lock()
        self.live_workers = 0

    # -- what the other threads ask ---------------------------------------------------------

    def epoch_of(self, camera_id: str) -> int | None:
        """The epoch of this worker's lease on the camera, None when it does not hold it (or
        could not renew it for `lease_s`)."""
        with self._lock:
            if time.monotonic() - self._renewed_at >= self.settings.lease_s:
                return None
            return self._held.get(camera_id)

    def held(self) -> list[Lease]:
        with self._lock:
            return [Lease(c, e) for c, e in sorted(self._held.items())]

    def frame_analysed(self, camera_id: str, epoch: int, frame_time: float) -> None:
        """Counted on the lease's tenure (what each worker analysed, for operators and tests)."""
        with self._lock:
            if self._held.get(camera_id) != epoch:
                return
            t = self._tally.get(camera_id)
            if t is None or t.epoch != epoch:
                self._tally[camera_id] = _FrameTally(epoch, 1, frame_time, frame_time)
            else:
                t.frames += 1
                t.first, t.last = min(t.first, frame_time), max(t.last, frame_time)

    def check(self, conn: psycopg.Connection[Any], camera_id: str, epoch: int) -> bool:
        """Fencing, inside the caller's transaction: this worker still holds the camera under
        `epoch`. The row stays share-locked until the caller commits, so no other worker can
        take the lease in between."""
        row = conn.execute(
            "SELECT 1 FROM video_camera_leases WHERE camera_id = %s AND holder = %s"
            " AND epoch = %s AND expires_at > now() FOR SHARE",
            (camera_id, self.worker_id, epoch),
        ).fetchone()
        return row is not None

    # -- lifecycle ------------------------------------------------------------------------

    def register(self) -> None:
        """Every configured camera has a lease row; this worker is counted from now on."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO video_camera_leases (camera_id) SELECT unnest(%s::text[])"
                " ON CONFLICT (camera_id) DO NOTHING",
                (self.camera_ids,),
            )
            self._register_worker(conn)

    def _register_worker(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(
            "INSERT INTO video_workers (worker_id, expires_at) VALUES (%s, now() + %s)"
            " ON CONFLICT (worker_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
            (self.worker_id, self._lease),
        )

    def heartbeat(self) -> None:
        """Renew, flush frame counts, give back the excess, take up to the fair share."""
        started = time.monotonic()
        with self._lock:
            mine = dict(self._held)
            tally, self._tally = self._tally, {}
        try:
            with self.pool.connection() as conn, conn.transaction():
                self._register_worker(conn)
                renewed = self._renew(conn, mine)
                self._flush(conn, tally)
                lost = sorted(set(mine) - set(renewed))
                if lost:
                    self._end(conn, {c: mine[c] for c in lost}, "lost")
                workers = conn.execute(
                    "SELECT count(*) FROM video_workers WHERE expires_at > now()"
                ).fetchone()
                self.live_workers = max(1, int(workers[0]) if workers else 1)
                share = math.ceil(len(self.camera_ids) / self.live_workers)
                excess = sorted(renewed)[share:] if len(renewed) > share else []
                acquired = self._acquire(conn, share - len(renewed)) if not excess else []
                conn.execute(
                    "DELETE FROM video_workers WHERE expires_at < now() - interval '1 hour'"
                )
        except psycopg.Error:
            with self._lock:  # the counts go out with the next heartbeat
                for cam, t in tally.items():
                    self._tally.setdefault(cam, t)
            raise
        if lost:
            with self._lock:
                for cam in lost:
                    self._held.pop(cam, None)
            log.warning("video worker %s lost the lease of %s", self.worker_id, ", ".join(lost))
            self.metrics.leases_ended.labels("lost").inc(len(lost))
            if self.listener is not None:
                self.listener.leases_ended(lost)
        with self._lock:
            self._renewed_at = started
            for lease in acquired:
                self._held[lease.camera_id] = lease.epoch
        if acquired:
            log.info("video worker %s took %s", self.worker_id,
                     ", ".join(f"{a.camera_id} (epoch {a.epoch})" for a in acquired))  # fmt: skip
            if self.listener is not None:
                self.listener.leases_acquired(acquired)
        if excess:
            self.release(excess)
        self.metrics.leases_held.set(len(self._held))
        self.metrics.lease_workers.set(self.live_workers)

    def _renew(self, conn: psycopg.Connection[Any], mine: dict[str, int]) -> dict[str, int]:
        if not mine:
            return {}
        rows = conn.execute(
            "UPDATE video_camera_leases l SET expires_at = now() + %s"
            " FROM unnest(%s::text[], %s::bigint[]) AS m(camera_id, epoch)"
            " WHERE l.camera_id = m.camera_id AND l.epoch = m.epoch AND l.holder = %s"
            " AND l.expires_at > now() RETURNING l.camera_id, l.epoch",
            (self._lease, list(mine), list(mine.values()), self.worker_id),
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def _flush(self, conn: psycopg.Connection[Any], tally: dict[str, _FrameTally]) -> None:
        if not tally:
            return
        with conn.cursor() as cur:
            cur.executemany(
                "UPDATE video_lease_tenures SET frames = frames + %s,"
                " first_frame_at = LEAST(first_frame_at, %s),"
                " last_frame_at = GREATEST(last_frame_at, %s)"
                " WHERE camera_id = %s AND epoch = %s",
                [(t.frames, _at(t.first), _at(t.last), cam, t.epoch) for cam, t in tally.items()],
            )

    def _acquire(self, conn: psycopg.Connection[Any], wanted: int) -> list[Lease]:
        if wanted <= 0:
            return []
        # SKIP LOCKED: two workers taking at once split the free cameras between them.
        rows = conn.execute(
            "WITH free AS (SELECT camera_id, holder, last_holder FROM video_camera_leases"
            "  WHERE camera_id = ANY(%(cams)s) AND (holder IS NULL OR expires_at <= now())"
            "  ORDER BY camera_id LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
            " UPDATE video_camera_leases l SET holder = %(me)s, epoch = l.epoch + 1,"
            "  acquired_at = now(), expires_at = now() + %(lease)s, last_holder = %(me)s"
            " FROM free WHERE l.camera_id = free.camera_id"
            " RETURNING l.camera_id, l.epoch, free.holder, free.last_holder",
            {"cams": self.camera_ids, "n": wanted, "me": self.worker_id, "lease": self._lease},
        ).fetchall()
        leases: list[Lease] = []
        for cam, epoch, holder, last in rows:
            if holder is not None:
                taken_from = "expired"  # its holder stopped renewing: presumed dead
            elif last is not None and last != self.worker_id:
                taken_from = "released"
            else:
                taken_from = "new"
            self.metrics.leases_acquired.labels(taken_from).inc()
            if taken_from != "new":
                self.metrics.leases_moved.inc()
            conn.execute(
                "UPDATE video_lease_tenures SET ended_at = now(), end_reason = 'expired'"
                " WHERE camera_id = %s AND epoch < %s AND ended_at IS NULL",
                (cam, epoch),
            )
            conn.execute(
                "INSERT INTO video_lease_tenures (camera_id, epoch, holder, taken_from)"
                " VALUES (%s, %s, %s, %s)",
                (cam, epoch, self.worker_id, taken_from),
            )
            leases.append(Lease(cam, int(epoch)))
        return leases

    def _end(self, conn: psycopg.Connection[Any], leases: dict[str, int], reason: str) -> None:
        """Close the tenures and free the rows still ours (free at once for the others)."""
        cams, epochs = list(leases), list(leases.values())
        conn.execute(
            "UPDATE video_lease_tenures t SET ended_at = now(), end_reason = %s"
            " FROM unnest(%s::text[], %s::bigint[]) AS m(camera_id, epoch)"
            " WHERE t.camera_id = m.camera_id AND t.epoch = m.epoch AND t.ended_at IS NULL",
            (reason, cams, epochs),
        )
        conn.execute(
            "UPDATE video_camera_leases l SET holder = NULL, expires_at = now()"
            " FROM unnest(%s::text[], %s::bigint[]) AS m(camera_id, epoch)"
            " WHERE l.camera_id = m.camera_id AND l.epoch = m.epoch AND l.holder = %s",
            (cams, epochs, self.worker_id),
        )

    def release(self, camera_ids: Sequence[str] | None = None) -> None:
        """Give cameras back (all of them when None): first stop taking their frames, then
        free the rows, so another worker may take them at its next heartbeat."""
        with self._lock:
            cams = sorted(self._held if camera_ids is None else set(camera_ids) & set(self._held))
            leases = {c: self._held.pop(c) for c in cams}
            tally = {c: t for c, t in self._tally.items() if c in leases}
            for c in tally:
                del self._tally[c]
        if not leases:
            return
        if self.listener is not None:
            self.listener.leases_ended(cams)
        with self.pool.connection() as conn, conn.transaction():
            self._flush(conn, tally)
            self._end(conn, leases, "released")
        self.metrics.leases_ended.labels("released").inc(len(leases))
        self.metrics.leases_held.set(len(self._held))
        log.info("video worker %s gave back %s", self.worker_id, ", ".join(cams))

    def apply_retention(self, keep: timedelta) -> int:
        """Forget holdings that ended longer than `keep` ago (the current ones stay)."""
        with self.pool.connection() as conn:
            cur = conn.execute(
                "DELETE FROM video_lease_tenures WHERE ended_at < now() - %s", (keep,)
            )
            return cur.rowcount

    def stop(self) -> None:
        """Clean stop: every lease given back and this worker no longer counted."""
        try:
            self.release()
            with self.pool.connection() as conn:
                conn.execute("DELETE FROM video_workers WHERE worker_id = %s", (self.worker_id,))
        except psycopg.Error as err:
            log.warning("could not give back the camera leases (they expire in %g s): %s",
                        self.settings.lease_s, err)  # fmt: skip


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
