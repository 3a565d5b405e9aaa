"""Cameras as devices: configured or accepted ids, last_seen in `devices`, online/offline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import psycopg
from psycopg_pool import ConnectionPool

from ingest import devices
from ingest.models import DeviceStatus, StatusSink
from video.metrics import VideoMetrics
from video.settings import CameraSettings, VideoSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class CameraState(StrEnum):
    """UNKNOWN (no frame since start) → ONLINE (frames) ⇄ OFFLINE (none for offline_after_s)."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(slots=True)
class CameraStatus:
    camera_id: str
    state: CameraState
    last_seen: datetime | None
    changed_at: datetime | None
    watched_since: datetime  # when we started expecting frames
    written_at: datetime | None = None  # last devices write
    dirty: bool = False  # state changed and not yet written


class CameraRegistry:
    """Thread-safe: `lookup` and `seen` run on the MQTT and pull threads; `tick` on its own."""

    def __init__(
        self,
        settings: VideoSettings,
        pool: ConnectionPool,
        metrics: VideoMetrics,
        status_sinks: Sequence[StatusSink] = (),
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.metrics = metrics
        self.status_sinks = status_sinks
        self.clock = clock
        self.configured = {c.id: c for c in settings.cameras}
        self._accepted: dict[str, CameraSettings] = {}
        self._lock = threading.Lock()
        # partition: leases: only the cameras this worker holds are watched (the others'
        # silence here says nothing); None watches every camera.
        self.watching: Callable[[str], bool] | None = None
        now = clock()
        self._status = {
            c.id: CameraStatus(c.id, CameraState.UNKNOWN, None, None, now) for c in settings.cameras
        }

    def lookup(self, camera_id: str) -> CameraSettings | None:
        """The camera's settings; None when it is unknown and unknown cameras are refused."""
        cam = self.configured.get(camera_id)
        if cam is not None or not self.settings.accept_unknown_cameras:
            return cam
        with self._lock:
            cam = self._accepted.get(camera_id)
            if cam is None:
                cam = self._accepted[camera_id] = CameraSettings(id=camera_id)
                log.info("camera %s is not configured; processing it with defaults", camera_id)
            return cam

    def cameras(self) -> list[CameraSettings]:
        with self._lock:
            return [*self.configured.values(), *self._accepted.values()]

    def seen(self, camera_id: str, at: datetime) -> None:
        with self._lock:
            st = self._status.get(camera_id)
            if st is None:
                st = self._status[camera_id] = CameraStatus(
                    camera_id, CameraState.UNKNOWN, None, None, at
                )
            if st.last_seen is None or at > st.last_seen:
                st.last_seen = at
            if st.state is not CameraState.ONLINE:
                st.state, st.changed_at, st.dirty = CameraState.ONLINE, at, True

    def statuses(self) -> list[CameraStatus]:
        with self._lock:
            return [replace(s) for s in self._status.values()]

    def load(self, camera_ids: Collection[str] | None = None) -> None:
        """At start, and when a lease brings a camera here: what `devices` says, so a restart
        or a move does not re-announce known cameras."""
        with self.pool.connection() as conn:
            rows = devices.known_of_kind(conn, "camera")
        with self._lock:
            now = self.clock()
            for cam in camera_ids or ():
                if cam in self._status:  # never seen by anyone yet: watched from now
                    self._status[cam].watched_since = now
            for row in rows:
                st = self._status.get(row.device_id)
                if st is None or (camera_ids is not None and row.device_id not in camera_ids):
                    continue
                st.last_seen = row.last_seen
                st.changed_at = row.status_changed_at
                st.written_at = now
                # A camera online before the restart has offline_after_s from now to prove it.
                st.state = CameraState.ONLINE if row.online else CameraState.OFFLINE
                st.watched_since = now

    def tick(self) -> None:
        """Write what changed, find cameras gone quiet, tell the status sinks."""
        now = self.clock()
        quiet = timedelta(seconds=self.settings.offline_after_s)
        every = timedelta(seconds=self.settings.last_seen_write_s)
        writes: list[tuple[str, datetime, bool, datetime | None, bool]] = []
        with self._lock:
            for st in self._status.values():
                if self.watching is not None and not self.watching(st.camera_id):
                    continue
                ref = st.last_seen or st.watched_since
                # ONLINE with no frame lately, or UNKNOWN (never sent one) for as long.
                if st.state is not CameraState.OFFLINE and ref < now - quiet:
                    st.state, st.changed_at, st.dirty = CameraState.OFFLINE, now, True
                due = st.last_seen is not None and (
                    st.written_at is None or st.written_at < now - every
                )
                if st.dirty or due:
                    writes.append(
                        (
                            st.camera_id,
                            st.last_seen or now,
                            st.state is CameraState.ONLINE,
                            st.changed_at,
                            st.dirty,
                        )
                    )
                    st.dirty, st.written_at = False, now
            self.metrics.cameras_online.set(
                sum(s.state is CameraState.ONLINE for s in self._status.values())
            )
        if not writes:
            return
        try:
            self._write(writes)
        except psycopg.Error as err:
            log.warning("could not write camera status: %s", err)
            with self._lock:
                for cam, *_ in writes:
                    self._status[cam].dirty = True
            return
        for cam, _, online, changed, changed_state in writes:
            if not changed_state:
                continue
            log.info("camera %s is %s", cam, "online" if online else "offline")
            status = DeviceStatus(cam, online, changed or now)
            for sink in self.status_sinks:
                try:
                    sink.status_changed(status)
                except Exception:
                    log.exception("status sink failed for camera %s", cam)

    def _write(self, writes: list[tuple[str, datetime, bool, datetime | None, bool]]) -> None:
        with self.pool.connection() as conn, conn.transaction():
            for cam, last_seen, online, changed, _ in writes:
                if self._status[cam].last_seen is None:
                    devices.mark_offline(conn, cam, changed)
                else:
                    devices.seen(conn, cam, "camera", last_seen, online, changed)
