"""Typed values passed between intake, worker processes and the result handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy.typing as npt

from video.models import Box

# OpenCV's own stubs type images loosely (integer or floating arrays); so do we.
Image = npt.NDArray[Any]


class FrameRejectReason(StrEnum):
    """Why a frame was dead-lettered; stored in dead_letters.reason."""

    UNKNOWN_CAMERA = "unknown_camera"
    TOO_LARGE = "too_large"
    NOT_JPEG = "not_jpeg"
    UNDECODABLE = "undecodable"


class DropReason(StrEnum):
    """Why a frame was dropped without a dead letter (frames are lossy by nature)."""

    RATE = "rate"
    QUEUE_FULL = "queue_full"
    WORKER_LOST = "worker_lost"
    STOPPING = "stopping"
    INTAKE_ERROR = "intake_error"
    # partition: leases
    NOT_HELD = "not_held"  # this worker does not (or no longer) hold the camera's lease
    ELSEWHERE = "elsewhere"  # handed over by ingest; this worker subscribes to its own


@dataclass(frozen=True, slots=True)
class FrameTask:
    """One frame for a worker: JPEG bytes (MQTT) or a decoded image (pulled stream)."""

    camera_id: str
    time: float  # epoch seconds: device time when known, else arrival
    received_at: float
    payload: bytes | None = None
    image: Image | None = None
    # The camera's lease epoch when the frame was admitted (partition: leases; else 0). A new
    # epoch starts the camera's detectors afresh: the state of an earlier holding is stale.
    epoch: int = 0


@dataclass(frozen=True, slots=True)
class Candidate:
    """What one detector found in one frame, before zones, filters and tracking."""

    label: str
    score: float
    box: Box
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class EpisodeUpdate:
    """A confirmed tracked object seen in this frame, reported to the rules."""

    label: str
    score: float
    box: Box
    zone: str | None
    episode_id: str
    frames: int
    started: bool
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Evidence images of a new episode: boxes drawn and clean, each with its shared copy."""

    episode_id: str
    annotated: bytes
    clean: bytes
    annotated_shared: bytes
    clean_shared: bytes
    faces: int


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What a worker returns for one frame."""

    camera_id: str
    time: float
    received_at: float
    rejected: FrameRejectReason | None = None
    failed: bool = False  # a detector raised; `detail` says what
    detail: str = ""
    updates: tuple[EpisodeUpdate, ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
