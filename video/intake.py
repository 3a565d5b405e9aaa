"""Frame intake: per-camera rate cap and size limit, dead letters, hand-off to the workers.

`frame_received` runs on the MQTT thread and never blocks: checks are in memory, dead
letters go to their own bounded queue, and frames to a worker's drop-oldest queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ingest.models import FrameMessage
from video.cameras import CameraRegistry
from video.deadletters import DeadLetterWriter, FrameDeadLetter, frames_topic
from video.frames import DropReason, FrameRejectReason, FrameTask, Image
from video.metrics import VideoMetrics
from video.settings import CameraSettings, VideoSettings

log = logging.getLogger(__name__)


class FrameDispatcher(Protocol):
    def submit(self, camera: CameraSettings, task: FrameTask) -> None: ...


class RateCap:
    """A token bucket per camera: `fps` frames per second sustained, and a burst of `burst`
    so that a frame arriving early (network jitter) uses a saved token instead of being
    dropped."""

    def __init__(self, burst: float = 2.0) -> None:
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}  # camera -> (tokens, time)
        self._lock = threading.Lock()

    def admit(self, camera_id: str, fps: float, now: float) -> bool:
        with self._lock:
            tokens, last = self._buckets.get(camera_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * fps)
            admitted = tokens >= 1.0
            self._buckets[camera_id] = (tokens - 1.0 if admitted else tokens, now)
            return admitted


@dataclass(eq=False)
class FrameIntake:
    """The FrameSink the ingest MQTT intake calls, and the entry of pulled frames."""

    settings: VideoSettings
    cameras: CameraRegistry
    dispatcher: FrameDispatcher
    dead_letters: DeadLetterWriter
    metrics: VideoMetrics
    # partition: leases: the epoch of this worker's lease on a camera, None if not held.
    lease_of: Callable[[str], int | None] | None = None
    rate: RateCap = field(default_factory=RateCap, init=False)

    def frame_received(self, frame: FrameMessage) -> None:
        self.metrics.frames_received.labels("mqtt").inc()
        try:
            self._received(frame)
        except Exception:  # the MQTT thread serves every device: one frame must not stop it
            self.metrics.frames_dropped.labels(DropReason.INTAKE_ERROR.value).inc()
            log.exception("frame from %s could not be taken in", frame.device_id)

    def _received(self, frame: FrameMessage) -> None:
        cam_id, payload = frame.device_id, frame.payload
        try:
            camera = self.cameras.lookup(cam_id)
        except ValueError:  # an id the camera settings refuse (pydantic's error is one)
            camera = None
        if camera is None:
            self._reject(cam_id, FrameRejectReason.UNKNOWN_CAMERA,
                         f"camera {cam_id!r} is not configured (video.cameras) and unknown "
                         "cameras are not accepted", payload)  # fmt: skip
            return
        if len(payload) > self.settings.max_frame_bytes:
            self._reject(cam_id, FrameRejectReason.TOO_LARGE,
                         f"frame is {len(payload)} bytes; at most "
                         f"{self.settings.max_frame_bytes} are accepted", payload)  # fmt: skip
            return
        if payload[:2] != b"\xff\xd8":
            self._reject(cam_id, FrameRejectReason.NOT_JPEG,
                         "frames must be JPEG images (they start with FF D8)", payload)  # fmt: skip
            return
        at = frame.device_time or frame.received_at
        if abs((at - frame.received_at).total_seconds()) > self.settings.max_clock_skew_s:
            # A camera with a wrong clock must not send tracks and hold times back in time.
            self.metrics.clock_skew.inc()
            at = frame.received_at
        self._admit(camera, at, frame.received_at, payload=payload)

    def image_received(self, camera: CameraSettings, image: Image, at: datetime) -> None:
        """A frame pulled from a stream (already decoded)."""
        self.metrics.frames_received.labels("pull").inc()
        self._admit(camera, at, at, image=image)

    def _admit(
        self,
        camera: CameraSettings,
        time_: datetime,
        received_at: datetime,
        payload: bytes | None = None,
        image: Image | None = None,
    ) -> None:
        epoch = 0
        if self.lease_of is not None:
            held = self.lease_of(camera.id)
            if held is None:  # a frame still in flight after the camera moved on
                self.metrics.frames_dropped.labels(DropReason.NOT_HELD.value).inc()
                return
            epoch = held
        if not self.rate.admit(camera.id, self.settings.camera_fps(camera), time.monotonic()):
            self.metrics.frames_dropped.labels(DropReason.RATE.value).inc()
            return
        self.cameras.seen(camera.id, received_at)
        task = FrameTask(camera.id, time_.timestamp(), received_at.timestamp(), payload, image,
                         epoch)  # fmt: skip
        self.dispatcher.submit(camera, task)

    def _reject(
        self, camera_id: str, reason: FrameRejectReason, detail: str, payload: bytes
    ) -> None:
        self.dead_letters.put(
            FrameDeadLetter(frames_topic(camera_id), camera_id, reason, detail, payload)
        )

    def reject_decoded(
        self, camera_id: str, reason: FrameRejectReason, detail: str, payload: bytes
    ) -> None:
        """A worker could not decode the frame or found it too large once decoded."""
        self._reject(camera_id, reason, detail, payload)
