"""Settings of frame intake, detectors and evidence storage."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Same rule as the MQTT topic contract, so a camera id is always a valid device id.
CAMERA_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
PULL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "file://")

Point = tuple[float, float]


class DetectorName(StrEnum):
    """Detectors a camera can run; each yields detections with the same label."""

    MOTION = "motion"
    PERSON = "person"
    FIRE = "fire"
    SMOKE = "smoke"
    TAMPER = "tamper"
    ONNX = "onnx"


DEFAULT_DETECTORS = (
    DetectorName.MOTION,
    DetectorName.PERSON,
    DetectorName.FIRE,
    DetectorName.SMOKE,
    DetectorName.TAMPER,
)


def _check_polygon(points: list[Point]) -> list[Point]:
    for i, (x, y) in enumerate(points):
        if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ValueError(
                f"point {i} ({x}, {y}) must be a fraction of the frame: 0 <= x, y <= 1"
            )
    return points


class ZoneSettings(BaseModel):
    """A named polygon; a detection is in the zone when its box's bottom centre is inside."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="zone name used by detection rules")
    polygon: list[Point] = Field(
        min_length=3, description="corners as fractions of the frame width and height (0..1)"
    )

    _points = field_validator("polygon")(_check_polygon)


class MaskSettings(BaseModel):
    """A polygon where nothing is looked for (trees in the wind, a clock, a road)."""

    model_config = ConfigDict(extra="forbid")

    polygon: list[Point] = Field(
        min_length=3, description="corners as fractions of the frame width and height (0..1)"
    )

    _points = field_validator("polygon")(_check_polygon)


class FilterSettings(BaseModel):
    """What a candidate must pass before it counts (per label)."""

    model_config = ConfigDict(extra="forbid")

    min_area: int = Field(default=0, ge=0, description="box area at least, in pixels")
    max_area: int | None = Field(default=None, ge=1, description="box area at most, in pixels")
    min_score: float = Field(default=0.5, ge=0, le=1, description="detector score at least")
    min_frames: int = Field(
        default=3, ge=1, description="frames an object must be seen before its episode starts"
    )

    @model_validator(mode="after")
    def _area_order(self) -> FilterSettings:
        if self.max_area is not None and self.max_area < self.min_area:
            raise ValueError(f"max_area {self.max_area} is below min_area {self.min_area}")
        return self


BUILTIN_FILTERS = {
    "motion": FilterSettings(min_area=400, min_score=0.5, min_frames=2),
    "tamper": FilterSettings(min_score=0.5, min_frames=5),
    # A full-body Haar box alone scores 0.55: too many false people on its own.
    "person": FilterSettings(min_score=0.6, min_frames=3),
}


class OnnxSettings(BaseModel):
    """A site-supplied YOLO-style ONNX model run through OpenCV's dnn module."""

    model_config = ConfigDict(extra="forbid")

    model_path: Path = Field(description="the .onnx file")
    class_names: list[str] = Field(min_length=1, description="label of each output class")
    input_size: int = Field(default=640, ge=32, le=2048, description="square input side")
    output_format: Literal["auto", "yolov5", "yolov8"] = Field(
        default="auto",
        description="yolov5: [1, N, 5+C] with objectness; yolov8: [1, 4+C, N]; auto: by shape",
    )
    confidence: float = Field(default=0.25, ge=0, le=1, description="candidates below are cut")
    nms_iou: float = Field(default=0.45, gt=0, le=1, description="non-maximum suppression IoU")


class CameraSettings(BaseModel):
    """One camera: where its frames come from, what to look for and where."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CAMERA_ID_PATTERN, description="device id (its MQTT topic segment)")
    name: str = Field(default="", description="label shown to people")
    url: str | None = Field(
        default=None,
        description="rtsp://, http(s):// or file:// stream pulled through OpenCV; "
        "unset: the camera publishes JPEG frames over MQTT",
    )
    fps: float | None = Field(
        default=None, gt=0, le=30, description="frames per second processed at most"
    )
    detectors: list[DetectorName] = Field(
        default_factory=lambda: list(DEFAULT_DETECTORS), description="detectors to run"
    )
    zones: list[ZoneSettings] = Field(default_factory=list, description="named zones")
    motion_masks: list[MaskSettings] = Field(
        default_factory=list, description="areas where motion is ignored"
    )
    object_masks: list[MaskSettings] = Field(
        default_factory=list,
        description="areas where detections are dropped (box bottom centre inside)",
    )
    filters: dict[str, FilterSettings] = Field(
        default_factory=dict, description="per label, overriding the video-wide filters"
    )
    onnx: OnnxSettings | None = Field(default=None, description="model for the onnx detector")

    @field_validator("url")
    @classmethod
    def _scheme(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(PULL_SCHEMES):
            raise ValueError(f"url must start with one of {', '.join(PULL_SCHEMES)}")
        return url

    @model_validator(mode="after")
    def _onnx_needs_model(self) -> CameraSettings:
        if DetectorName.ONNX in self.detectors and self.onnx is None:
            raise ValueError("detector 'onnx' is enabled but no 'onnx' model is configured")
        names = [z.name for z in self.zones]
        if len(names) != len(set(names)):
            raise ValueError(f"zone names must be unique, got {names}")
        return self


class LeaseSettings(BaseModel):
    """Camera leases when video runs as several workers (`partition: leases`)."""

    model_config = ConfigDict(extra="forbid")

    lease_s: float = Field(
        default=10.0,
        ge=1,
        le=300,
        description="a camera's lease lasts this long unless renewed: the longest its frames "
        "go unanalysed when its worker dies",
    )
    heartbeat_s: float = Field(
        default=3.0, gt=0, description="leases are renewed, taken and given back this often"
    )
    worker_id: str | None = Field(
        default=None,
        pattern=CAMERA_ID_PATTERN,
        description="this worker's name in the lease table; unset: host name and process id",
    )
    detections_retention: timedelta = Field(
        default=timedelta(days=7),
        description="rows of video_detections (the hand-off to the engine) and ended "
        "lease tenures are kept this long",
    )

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> LeaseSettings:
        # Two missed heartbeats must not cost a healthy worker its cameras.
        if self.heartbeat_s * 2 > self.lease_s:
            raise ValueError(
                f"heartbeat_s {self.heartbeat_s:g} must be at most half of lease_s {self.lease_s:g}"
            )
        return self


class VideoSettings(BaseModel):
    """Cameras, detectors and where evidence is kept."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run the video pipeline")
    cameras: list[CameraSettings] = Field(default_factory=list, description="known cameras")
    accept_unknown_cameras: bool = Field(
        default=False,
        description="frames from cameras not listed are processed with defaults "
        "(otherwise dead-lettered as unknown_camera)",
    )
    fps: float = Field(default=5.0, gt=0, le=30, description="default per-camera frame cap")
    max_frame_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="frames larger than this are rejected"
    )
    max_width: int = Field(default=3840, ge=16, description="decoded frames wider are rejected")
    max_height: int = Field(default=2160, ge=16, description="decoded frames taller are rejected")
    process_width: int = Field(
        default=640, ge=160, le=1920, description="frames are scaled down to this width first"
    )
    workers: int = Field(default=2, ge=1, le=64, description="detection worker processes")
    queue_frames: int = Field(
        default=32,
        ge=1,
        description="frames waiting per worker; when full the oldest is dropped and counted",
    )
    filters: dict[str, FilterSettings] = Field(
        default_factory=dict,
        description="per label, for every camera; labels not listed use the built-in "
        "defaults (motion min_area 400 min_frames 2, tamper min_frames 5, person "
        "min_score 0.6) or those of a filter",
    )
    object_interval_s: float = Field(
        default=0.4,
        ge=0,
        description="person and ONNX detectors run at most this often per camera, and only "
        "on frames with motion; tracks carry over between runs (0: every frame with motion)",
    )
    max_clock_skew_s: float = Field(
        default=300.0,
        gt=0,
        description="a frame's device time (MQTT user property ts) further than this from "
        "its arrival is not trusted: the arrival time is used and the frame counted",
    )
    motion_min_area: int = Field(
        default=200, ge=1, description="moving blobs smaller than this (pixels) are noise"
    )
    iou_threshold: float = Field(
        default=0.3, gt=0, le=1, description="box overlap that continues a tracked object"
    )
    episode_gap_s: float = Field(
        default=5.0, gt=0, description="an object unseen this long ends its episode"
    )
    update_interval_s: float = Field(
        default=2.0, gt=0, description="a running episode is re-reported this often"
    )
    offline_after_s: float = Field(
        default=60.0, gt=0, description="a camera with no frame for this long is offline"
    )
    last_seen_write_s: float = Field(
        default=10.0, gt=0, description="devices.last_seen is written at most this often"
    )
    dead_letter_payload_bytes: int = Field(
        default=8192, ge=0, description="raw frame bytes kept in a dead letter"
    )
    dead_letter_queue: int = Field(
        default=1000, ge=1, description="dead letters waiting for the database; beyond, counted"
    )
    evidence_dir: Path | None = Field(
        default=None, description="evidence files; unset: <state_dir>/evidence"
    )
    evidence_retention: timedelta = Field(
        default=timedelta(days=180),
        description="evidence older than this is removed unless an alert still needs it",
    )
    retention_interval_s: float = Field(
        default=3600.0, gt=0, description="how often retention runs"
    )
    jpeg_quality: int = Field(default=90, ge=30, le=100, description="evidence JPEG quality")
    blur_faces: bool = Field(
        default=True, description="make face-blurred copies for other departments"
    )
    partition: Literal["local", "leases"] = Field(
        default="local",
        description="local: this process analyses every camera whose frames it is handed "
        "(one process); leases: cameras are leased in PostgreSQL and this worker subscribes "
        "to the frames of the cameras it holds (several video workers)",
    )
    leases: LeaseSettings = Field(
        default_factory=LeaseSettings, description="camera leases (partition: leases)"
    )

    @model_validator(mode="after")
    def _unique_cameras(self) -> VideoSettings:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dupes)}")
        if self.partition == "leases" and self.accept_unknown_cameras:
            # A lease is per listed camera; an unlisted one has no lease to subscribe by.
            raise ValueError("partition 'leases' needs every camera listed in video.cameras; "
                             "accept_unknown_cameras must be false")  # fmt: skip
        return self

    def camera_fps(self, camera: CameraSettings) -> float:
        return camera.fps if camera.fps is not None else self.fps

    def filter_for(self, camera: CameraSettings, label: str) -> FilterSettings:
        """The camera's filter for the label, else the video-wide one, else the built-in."""
        found = camera.filters.get(label) or self.filters.get(label)
        if found is None:
            found = BUILTIN_FILTERS.get(label)
        return found if found is not None else FilterSettings()
