"""One camera's detection pipeline: decode, tamper, motion, detectors, zones, tracking."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import cv2
import numpy as np

from video.fire import SMALL, FireDetector, SmokeDetector
from video.frames import (
    Candidate,
    FrameRejectReason,
    FrameResult,
    FrameTask,
    Image,
    Snapshot,
)
from video.geometry import polygon_mask, union_box
from video.motion import MotionDetector
from video.onnx_detector import OnnxDetector
from video.person import PersonDetector
from video.settings import CameraSettings, DetectorName, VideoSettings
from video.snapshot import FaceBlurrer, make_snapshot
from video.tamper import TamperDetector
from video.tracking import Tracker
from video.zones import ZoneMap

log = logging.getLogger(__name__)

# When most of the view changes at once (lights, a cover, a shaken camera), the boxes mean
# nothing: the expensive detectors wait for the view to settle.
GLOBAL_CHANGE = 0.5


def decode(payload: bytes, settings: VideoSettings) -> Image | FrameRejectReason:
    """A JPEG to a BGR image, or why not."""
    if payload[:2] != b"\xff\xd8":
        return FrameRejectReason.NOT_JPEG
    image = cv2.imdecode(np.frombuffer(payload, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        return FrameRejectReason.UNDECODABLE
    return image


class CameraPipeline:
    """State of one camera in a worker: background model, tamper reference, tracks."""

    def __init__(self, camera: CameraSettings, settings: VideoSettings) -> None:
        self.camera = camera
        self.settings = settings
        self.enabled = set(camera.detectors)
        self.tracker = Tracker(
            camera.id,
            lambda label: settings.filter_for(camera, label),
            settings.iou_threshold,
            settings.episode_gap_s,
            settings.update_interval_s,
        )
        self._size: tuple[int, int] | None = None
        self._zones: ZoneMap | None = None
        self._motion: MotionDetector | None = None
        self._fire = FireDetector() if DetectorName.FIRE in self.enabled else None
        self._smoke = SmokeDetector() if DetectorName.SMOKE in self.enabled else None
        self._tamper = TamperDetector() if DetectorName.TAMPER in self.enabled else None
        self._person = PersonDetector() if DetectorName.PERSON in self.enabled else None
        self._onnx = (
            OnnxDetector(camera.onnx)
            if DetectorName.ONNX in self.enabled and camera.onnx is not None
            else None
        )
        self._blurrer = FaceBlurrer() if settings.blur_faces else None
        self._last_object_run = float("-inf")

    def _layout(self, width: int, height: int) -> None:
        """Masks and zones in pixels; a camera that changes resolution starts over."""
        if self._size == (width, height):
            return
        if self._size is not None:
            log.info("camera %s changed resolution to %dx%d", self.camera.id, width, height)
        self._size = (width, height)
        self._zones = ZoneMap(
            self.camera, width, height, lambda label: self.settings.filter_for(self.camera, label)
        )
        masks = [m.polygon for m in self.camera.motion_masks]
        ignore = polygon_mask(masks, width // 2, height // 2) if masks else None
        self._motion = MotionDetector(ignore, self.settings.motion_min_area)
        if self._fire is not None:
            self._fire = FireDetector()
        if self._smoke is not None:
            self._smoke = SmokeDetector()
        if self._tamper is not None:
            self._tamper = TamperDetector()

    def process(self, task: FrameTask) -> FrameResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if task.image is not None:
            image: Image = task.image
        else:
            decoded = decode(task.payload or b"", self.settings)
            if isinstance(decoded, FrameRejectReason):
                detail = (
                    "the payload is not a JPEG image"
                    if decoded is FrameRejectReason.NOT_JPEG
                    else "the JPEG could not be decoded"
                )
                return FrameResult(
                    task.camera_id, task.time, task.received_at, rejected=decoded, detail=detail
                )
            image = decoded
        height, width = image.shape[:2]
        if width > self.settings.max_width or height > self.settings.max_height:
            return FrameResult(
                task.camera_id, task.time, task.received_at, rejected=FrameRejectReason.TOO_LARGE,
                detail=f"frame is {width}x{height}; at most "
                f"{self.settings.max_width}x{self.settings.max_height} is accepted",
            )  # fmt: skip
        if width > self.settings.process_width:
            h = round(height * self.settings.process_width / width)
            image = cv2.resize(
                image, (self.settings.process_width, h), interpolation=cv2.INTER_AREA
            )
            height, width = image.shape[:2]
        timings["decode"] = time.perf_counter() - t0
        self._layout(width, height)
        candidates = self._detect(image, width, height, task.time, timings)
        assert self._zones is not None
        placed = self._zones.place(candidates)
        updates = self.tracker.update(placed, task.time)
        snapshots: list[Snapshot] = []
        if any(u.started for u in updates):
            t1 = time.perf_counter()
            at = datetime.fromtimestamp(task.time, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            snapshots = [
                make_snapshot(
                    image,
                    u,
                    self._blurrer,
                    self.settings.jpeg_quality,
                    f"{self.camera.id}  {at}  {u.episode_id.rsplit(':', 1)[-1]}",
                )
                for u in updates
                if u.started
            ]
            timings["evidence"] = time.perf_counter() - t1
        return FrameResult(
            task.camera_id,
            task.time,
            task.received_at,
            updates=tuple(updates),
            snapshots=tuple(snapshots),
            timings=timings,
        )

    def _detect(
        self, image: Image, width: int, height: int, t_frame: float, timings: dict[str, float]
    ) -> list[Candidate]:
        found: list[Candidate] = []
        t = time.perf_counter()
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray_half = cv2.resize(gray, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
        small = cv2.resize(image, SMALL, interpolation=cv2.INTER_AREA)
        timings["prepare"] = time.perf_counter() - t

        tampered = False
        if self._tamper is not None:
            t = time.perf_counter()
            tamper = self._tamper.detect(gray_half, width, height)
            timings["tamper"] = time.perf_counter() - t
            found += tamper
            tampered = bool(tamper)

        assert self._motion is not None
        t = time.perf_counter()
        motion = self._motion.detect(gray_half)
        timings["motion"] = time.perf_counter() - t
        if tampered or motion.fraction > GLOBAL_CHANGE:
            return found

        # Colour and flicker need every frame's history, and cost little at 160x120.
        if self._fire is not None:
            t = time.perf_counter()
            found += self._fire.detect(small, width, height)
            timings["fire"] = time.perf_counter() - t
        if self._smoke is not None:
            t = time.perf_counter()
            found += self._smoke.detect(small, width, height)
            timings["smoke"] = time.perf_counter() - t
        if not motion.regions:
            return found
        if DetectorName.MOTION in self.enabled:
            score = min(0.99, 0.6 + 4 * motion.fraction)
            found.append(Candidate("motion", score, union_box(motion.regions)))
        # Object detectors cost 10-100x the rest: a few runs a second follow a walking person.
        if t_frame - self._last_object_run < self.settings.object_interval_s:
            return found
        self._last_object_run = t_frame
        if self._person is not None:
            t = time.perf_counter()
            found += self._person.detect(image, motion.regions)
            timings["person"] = time.perf_counter() - t
        if self._onnx is not None:
            t = time.perf_counter()
            found += self._onnx.detect(image)
            timings["onnx"] = time.perf_counter() - t
        return found
