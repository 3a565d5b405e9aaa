"""Motion: MOG2 background subtraction at half resolution, with motion masks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from video.frames import Image
from video.models import Box

# MOG2 sees the whole first frames as foreground until its model settles.
WARMUP_FRAMES = 8
_KERNEL_OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
_KERNEL_DILATE = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


@dataclass(frozen=True, slots=True)
class MotionResult:
    """Moving regions in processing-frame pixels and the moving fraction of the frame."""

    regions: tuple[Box, ...]
    fraction: float


class MotionDetector:
    """Background subtraction on the half-size grey frame; masks zero out ignored areas."""

    def __init__(self, ignore_mask: Image | None, min_area: int) -> None:
        # ignore_mask: 255 where motion is ignored, at half resolution.
        self._keep = None if ignore_mask is None else cv2.bitwise_not(ignore_mask)
        self._min_area_half = max(1, min_area // 4)
        self._sub = cv2.createBackgroundSubtractorMOG2(
            history=300, varThreshold=25, detectShadows=False
        )
        self._frames = 0

    def detect(self, gray_half: Image) -> MotionResult:
        fg = self._sub.apply(gray_half)
        self._frames += 1
        if self._frames <= WARMUP_FRAMES:
            return MotionResult((), 0.0)
        if self._keep is not None:
            fg = cv2.bitwise_and(fg, self._keep)
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _KERNEL_OPEN)
        fraction = float(np.count_nonzero(fg)) / fg.size
        if fraction == 0.0:
            return MotionResult((), 0.0)
        fg = cv2.dilate(fg, _KERNEL_DILATE, iterations=2)
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        regions = []
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if w * h >= self._min_area_half:
                regions.append(Box(2 * x, 2 * y, 2 * w, 2 * h))
        return MotionResult(tuple(regions), fraction)
