"""The video service: intake, worker processes, evidence, camera status, retention."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import FrameMessage, StatusSink
from ingest.settings import MqttSettings
from supervise.worker import Supervised, Supervisor
from video.cameras import CameraRegistry
from video.deadletters import DeadLetterWriter
from video.detections import DetectionLog
from video.evidence import (
    CameraOwnership,
    EvidenceGuard,
    EvidenceStore,
    KeepAll,
    detection_json,
)
from video.frames import DropReason, EpisodeUpdate, FrameResult, FrameTask
from video.intake import FrameIntake
from video.leases import CameraLeases, Lease
from video.metrics import VideoMetrics
from video.models import Detection, DetectionSink
from video.pull import StreamPuller
from video.settings import VideoSettings
from video.subscriber import FrameSubscriber
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
        frames_from: tuple[str, MqttSettings] | None = None,
    ) -> None:
        """`frames_from` (broker URL, MQTT settings): with partition `leases`, this worker
        subscribes there to the frames of the cameras it holds; frames ingest hands over are
        then ignored (counted as `elsewhere`)."""
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
        # [partition: leases] ----------------------------------------------------------------
        self.leases: CameraLeases | None = None
        self.detection_log: DetectionLog | None = None
        self.subscriber: FrameSubscriber | None = None
        if settings.partition == "leases":
            self.leases = CameraLeases(settings.leases, [c.id for c in settings.cameras], pool,
                                       self.metrics, listener=self)  # fmt: skip
            self.detection_log = DetectionLog(pool, self.leases, self.metrics)
            self.cameras.watching = lambda cam: self._lease_of(cam) is not None
            if frames_from is not None:
                url, mqtt_settings = frames_from
                self.subscriber = FrameSubscriber(url, mqtt_settings,
                                                  f"offsite-video-{self.leases.worker_id}",
                                                  self._frame_from_broker)  # fmt: skip
        # ------------------------------------------------------------------------------------
        self.intake = FrameIntake(
            settings,
            self.cameras,
            self.workers,
            self.dead_letters,
            self.metrics,
            lease_of=self._lease_of if self.leases is not None else None,
        )
        # Streams are pulled by the worker holding the camera (all of them without leases).
        self._pulled = {c.id: c for c in settings.cameras if c.url is not None}
        self.pullers: dict[str, StreamPuller] = {}
        self._pullers_lock = threading.Lock()
        self._episodes: OrderedDict[str, str | None] = OrderedDict()
        self._episodes_lock = threading.Lock()
        self._stop = threading.Event()
        self.supervisor = supervisor or Supervisor()
        self._housekeeper: Supervised | None = None
        self._heartbeater: Supervised | None = None
        self._next_retention = 0.0
        if guard is None:
            log.warning("no evidence guard is wired: evidence retention will remove nothing")

    # -- FrameSink ------------------------------------------------------------------------

    def frame_received(self, frame: FrameMessage) -> None:
        if self.subscriber is not None:
            # This worker takes its cameras' frames from its own subscriptions.
            self.metrics.frames_dropped.labels(DropReason.ELSEWHERE.value).inc()
            return
        self.intake.frame_received(frame)

    def _frame_from_broker(self, frame: FrameMessage) -> None:
        self.intake.frame_received(frame)

    # -- leases (LeaseListener, on the heartbeat thread) ------------------------------------

    def _lease_of(self, camera_id: str) -> int | None:
        return self.leases.epoch_of(camera_id) if self.leases is not None else None

    def leases_acquired(self, leases: Sequence[Lease]) -> None:
        ids = [lease.camera_id for lease in leases]
        try:
            self.cameras.load(ids)
        except psycopg.Error as err:
            log.warning("camera state of %s not read: %s", ", ".join(ids), err)
        if self.subscriber is not None:
            self.subscriber.subscribe(ids)
        self._start_pullers(ids)

    def leases_ended(self, camera_ids: Sequence[str]) -> None:
        if self.subscriber is not None:
            self.subscriber.unsubscribe(camera_ids)
        self._stop_pullers(camera_ids)

    def _start_pullers(self, camera_ids: Iterable[str]) -> None:
        with self._pullers_lock:
            for cam in camera_ids:
                if cam in self._pulled and cam not in self.pullers and not self._stop.is_set():
                    puller = self.pullers[cam] = StreamPuller(self._pulled[cam], self.settings,
                                                              self.intake)  # fmt: skip
                    puller.start()

    def _stop_pullers(self, camera_ids: Iterable[str] | None = None) -> None:
        with self._pullers_lock:
            cams = list(self.pullers) if camera_ids is None else list(camera_ids)
            stopping = [p for c in cams if (p := self.pullers.pop(c, None)) is not None]
        for p in stopping:
            p.stop()

    def _heartbeat_step(self) -> bool:
        assert self.leases is not None
        if self._stop.wait(self.settings.leases.heartbeat_s):
            return False
        self._heartbeat()
        return True

    def _heartbeat(self) -> None:
        assert self.leases is not None
        try:
            self.leases.heartbeat()
        except psycopg.Error as err:
            self.metrics.lease_errors.inc()
            log.warning("camera lease heartbeat failed (leases lapse after %g s): %s",
                        self.settings.leases.lease_s, err)  # fmt: skip

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.evidence.directory.mkdir(parents=True, exist_ok=True)
        self.cameras.load()
        self.dead_letters.start()
        self.workers.start()
        if self.leases is None:
            self._start_pullers(self._pulled)
        else:
            if self.subscriber is not None:
                self.subscriber.start()
            # Before the first frame: alone, this worker takes every camera at once.
            self.leases.register()
            self._heartbeat()
            self._heartbeater = self.supervisor.start(
                f"video-leases-{self.leases.worker_id}", self._heartbeat_step,
                stall_s=max(30.0, self.settings.leases.lease_s * 3),
            )  # fmt: skip
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
        self.supervisor.retire(self._heartbeater, 10)
        if self.leases is not None:
            self.leases.stop()  # unsubscribes, then gives every camera back
        if self.subscriber is not None:
            self.subscriber.stop()
        self._stop_pullers()
        self.workers.stop()
        self.supervisor.retire(self._housekeeper, 10)
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
                if self.detection_log is not None and self.leases is not None:
                    keep = self.settings.leases.detections_retention
                    self.detection_log.apply_retention(keep)
                    self.leases.apply_retention(keep)
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
        if self.leases is not None:
            if self.leases.epoch_of(task.camera_id) != task.epoch:
                # Analysed after the camera moved on: its results belong to no one.
                self.metrics.frames_dropped.labels(DropReason.NOT_HELD.value).inc()
                self.metrics.detections_fenced.inc(len(result.updates))
                return
            self.leases.frame_analysed(task.camera_id, task.epoch, task.time)
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
        out = [replace(d, evidence_id=self._evidence_of(u.episode_id))
               for u, d in zip(result.updates, detections, strict=True)]  # fmt: skip
        if self.detection_log is not None:
            try:
                if not self.detection_log.record(task.camera_id, task.epoch, out):
                    return  # fenced: another worker holds the camera now
            except psycopg.Error as err:
                # Frames are lossy: a later update of the episode goes out once it is back.
                self.metrics.detections_unwritten.inc(len(out))
                log.warning("camera %s: %d detection updates not written: %s",
                            task.camera_id, len(out), err)  # fmt: skip
                return
        for u in result.updates:
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
