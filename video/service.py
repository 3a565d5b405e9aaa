"""The video service: intake, worker processes, evidence, camera status, retention."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import FrameMessage, StatusSink
from supervise.worker import Supervised, Supervisor
from video.cameras import CameraRegistry
from video.deadletters import DeadLetterWriter
from video.evidence import (
    CameraOwnership,
    EvidenceGuard,
    EvidenceStore,
    KeepAll,
    detection_json,
)
from video.frames import EpisodeUpdate, FrameResult, FrameTask
from video.intake import FrameIntake
from video.metrics import VideoMetrics
from video.models import Detection, DetectionSink
from video.pull import StreamPuller
from video.settings import VideoSettings
from video.workers import WorkerPool

log = logging.getLogger(__name__)

# Episodes whose evidence id is remembered for their later updates (oldest forgotten first).
_EPISODES_KEPT = 10_000


class VideoService:
    """Implements ingest's FrameSink; hands detections with evidence ids to `detection_sink`."""

    def __init__(
        self,
        settings: VideoSettings,
        pool: ConnectionPool,
        registry: CollectorRegistry,
        state_dir: Path,
        detection_sink: DetectionSink | None = None,
        status_sinks: Sequence[StatusSink] = (),
        guard: EvidenceGuard | None = None,
        ownership: CameraOwnership | None = None,
        start_method: str = "spawn",
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = VideoMetrics(registry)
        self.detection_sink = detection_sink
        self.guard: EvidenceGuard = guard if guard is not None else KeepAll()
        self.ownership = ownership
        self.evidence = EvidenceStore(
            settings.evidence_dir or state_dir / "evidence", pool, self.metrics
        )
        self.cameras = CameraRegistry(settings, pool, self.metrics, status_sinks)
        self.dead_letters = DeadLetterWriter(
            pool,
            self.metrics,
            settings.dead_letter_payload_bytes,
            settings.dead_letter_queue,
            supervisor,
        )
        self.workers = WorkerPool(settings, self.metrics, self._on_result, start_method, supervisor)
        self.intake = FrameIntake(
            settings, self.cameras, self.workers, self.dead_letters, self.metrics
        )
        self.pullers = [
            StreamPuller(c, settings, self.intake) for c in settings.cameras if c.url is not None
        ]
        self._episodes: OrderedDict[str, str | None] = OrderedDict()
        self._episodes_lock = threading.Lock()
        self._stop = threading.Event()
        self.supervisor = supervisor or Supervisor()
        self._housekeeper: Supervised | None = None
        self._next_retention = 0.0
        if guard is None:
            log.warning("no evidence guard is wired: evidence retention will remove nothing")

    # -- FrameSink ------------------------------------------------------------------------

    def frame_received(self, frame: FrameMessage) -> None:
        self.intake.frame_received(frame)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.evidence.directory.mkdir(parents=True, exist_ok=True)
        self.cameras.load()
        self.dead_letters.start()
        self.workers.start()
        for p in self.pullers:
            p.start()
        self._next_retention = time.monotonic() + 60  # not in the middle of start-up
        # Retention may walk a large evidence folder.
        self._housekeeper = self.supervisor.start(
            "video-housekeeping", self._housekeeping_step, stall_s=1800.0
        )
        log.info("video: %d cameras configured, %d workers, evidence in %s",
                 len(self.settings.cameras), self.settings.workers,
                 self.evidence.directory)  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        for p in self.pullers:
            p.stop()
        self.workers.stop()
        if self._housekeeper is not None and self._housekeeper.join(10):
            self.supervisor.forget(self._housekeeper)
        self.cameras.tick()
        self.dead_letters.stop()

    def idle(self) -> bool:
        return self.workers.idle()

    def _housekeeping_step(self) -> bool:
        # Errors other than the database's escape to the supervisor: logged, counted,
        # restarted, and shown in /readyz.
        if self._stop.wait(1.0):
            return False
        try:
            self.cameras.tick()
        except psycopg.Error as err:
            log.warning("camera status upkeep failed: %s", err)
        if time.monotonic() >= self._next_retention:
            self._next_retention = time.monotonic() + self.settings.retention_interval_s
            try:
                self.apply_retention()
            except psycopg.Error as err:
                log.warning("evidence retention failed; will retry: %s", err)
        return True

    def apply_retention(self, now: datetime | None = None) -> int:
        return self.evidence.apply_retention(
            now or datetime.now(UTC), self.settings.evidence_retention, self.guard
        )

    # -- results (on a worker's feeder thread) ------------------------------------------

    def _on_result(self, task: FrameTask, result: FrameResult) -> None:
        for stage, seconds in result.timings.items():
            self.metrics.detection_seconds.labels(stage).observe(seconds)
        if result.rejected is not None:
            self.intake.reject_decoded(task.camera_id, result.rejected, result.detail,
                                       task.payload or b"")  # fmt: skip
            return
        if result.failed:
            self.metrics.worker_errors.inc()
            return
        self.metrics.frames_decoded.inc()
        if not result.updates:
            return
        at = datetime.fromtimestamp(result.time, UTC)
        detections = [self._detection(result.camera_id, u, at) for u in result.updates]
        by_episode = {u.episode_id: (u, d) for u, d in zip(result.updates, detections,
                                                           strict=True)}  # fmt: skip
        for snap in result.snapshots:
            update, det = by_episode[snap.episode_id]
            evidence_id: str | None = None
            try:
                evidence_id = self.evidence.store(
                    result.camera_id, at, snap, [detection_json(det, update.detail)]
                )
            except Exception:  # disk or database: the detection still goes to the rules
                self.metrics.evidence_errors.inc()
                log.exception("evidence for episode %s could not be stored", snap.episode_id)
            self._remember(snap.episode_id, evidence_id)
        out: list[Detection] = []
        for u, d in zip(result.updates, detections, strict=True):
            out.append(replace(d, evidence_id=self._evidence_of(u.episode_id)))
            self.metrics.detections.labels(u.label).inc()
            if u.started:
                self.metrics.episodes.labels(u.label).inc()
        if self.detection_sink is not None:
            self.detection_sink.detections_observed(out)

    def _detection(self, camera_id: str, u: EpisodeUpdate, at: datetime) -> Detection:
        return Detection(camera_id, u.label, u.score, u.box, u.zone, at, u.episode_id, u.frames)

    def _remember(self, episode_id: str, evidence_id: str | None) -> None:
        with self._episodes_lock:
            self._episodes[episode_id] = evidence_id
            while len(self._episodes) > _EPISODES_KEPT:
                self._episodes.popitem(last=False)

    def _evidence_of(self, episode_id: str) -> str | None:
        with self._episodes_lock:
            return self._episodes.get(episode_id)
