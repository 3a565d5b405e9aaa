"""Camera tamper: covered, blinded, defocused or moved, from brightness, contrast,
sharpness and scene-change tests against a reference learnt while the view is healthy."""

from __future__ import annotations

from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from video.frames import Candidate, Image
from video.models import Box

WARMUP_FRAMES = 10
# A camera really moved stays moved: after this many frames the new view becomes the
# reference, so one repositioning is one episode, not an endless one.
RELEARN_FRAMES = 300
_REF_SIZE = (80, 60)


class TamperKind(StrEnum):
    COVERED = "covered"
    BLINDED = "blinded"
    DEFOCUSED = "defocused"
    MOVED = "moved"


class TamperDetector:
    """Absolute tests (covered, blinded) from the first frame; relative ones after warm-up."""

    def __init__(self) -> None:
        self._frames = 0
        self._sharpness: float | None = None
        self._reference: npt.NDArray[np.float32] | None = None
        self._abnormal = 0

    def check(self, gray_half: Image) -> TamperKind | None:
        """Classify one frame; updates the reference only from healthy frames."""
        self._frames += 1
        mean, std = (float(v[0][0]) for v in cv2.meanStdDev(gray_half))
        sharp = float(cv2.Laplacian(gray_half, cv2.CV_32F).var())
        small = cv2.resize(gray_half, _REF_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        small = (small - small.mean()) / (small.std() + 1e-3)

        kind: TamperKind | None = None
        if (std < 12 and mean < 45) or (std < 6 and mean <= 225):
            kind = TamperKind.COVERED
        elif mean > 225 and std < 20:
            kind = TamperKind.BLINDED
        elif self._frames > WARMUP_FRAMES and self._sharpness and self._reference is not None:
            if self._sharpness > 20 and sharp < 0.15 * self._sharpness:
                kind = TamperKind.DEFOCUSED
            elif float((small * self._reference).mean()) < 0.35:
                kind = TamperKind.MOVED

        if kind is None or (kind is TamperKind.MOVED and self._abnormal >= RELEARN_FRAMES):
            self._learn(sharp, small)
            self._abnormal = 0
            return None
        self._abnormal += 1
        return kind

    def _learn(self, sharp: float, small: npt.NDArray[np.float32]) -> None:
        if self._sharpness is None or self._reference is None:
            self._sharpness, self._reference = sharp, small
            return
        self._sharpness = 0.95 * self._sharpness + 0.05 * sharp
        ref = 0.95 * self._reference + 0.05 * small
        self._reference = (ref - ref.mean()) / (ref.std() + 1e-3)

    def detect(self, gray_half: Image, width: int, height: int) -> list[Candidate]:
        kind = self.check(gray_half)
        if kind is None:
            return []
        return [Candidate("tamper", 0.9, Box(0, 0, width, height), kind.value)]
