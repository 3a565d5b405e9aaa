"""Typed messages that leave the video package: detections fed to the rule engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel rectangle in the frame: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Detection:
    """One detection episode update from one camera (an object tracked across frames)."""

    camera_id: str
    label: str
    score: float
    box: Box
    zone: str | None
    time: datetime
    episode_id: str
    frames: int
    evidence_id: str | None = None


class DetectionSink(Protocol):
    """Receives detection episode updates (the rule engine's `detection` kind)."""

    def detections_observed(self, detections: Sequence[Detection]) -> None: ...
