"""Fire and smoke heuristics on a small frame: colour, flicker over a window, growth."""

from __future__ import annotations

from collections import deque

import cv2
import numpy as np
import numpy.typing as npt

from video.frames import Candidate, Image
from video.models import Box

SMALL = (160, 120)  # analysis size: colour and flicker need no detail, and this is cheap
FIRE_WINDOW = 10  # frames (2 s at 5 fps)
SMOKE_WINDOW = 15  # frames (3 s at 5 fps)
# The background is a running mean until it settles (learning rate 1/n reaches 0.02 at 50).
SMOKE_WARMUP = 50

BoolMask = npt.NDArray[np.bool_]


def fire_colour(small_bgr: Image) -> BoolMask:
    """Flame colours: bright red channel, R >= G > B, and far from grey (Chen et al. 2004)."""
    b = small_bgr[:, :, 0].astype(np.int16)
    g = small_bgr[:, :, 1].astype(np.int16)
    r = small_bgr[:, :, 2].astype(np.int16)
    return (r > 170) & (r >= g) & (g > b) & (r - b > 70)


def _components(mask: BoolMask, min_area: int) -> list[tuple[int, int, int, int, BoolMask]]:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    out = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if area >= min_area:
            out.append((x, y, w, h, labels == i))
    return out


def _to_frame(x: int, y: int, w: int, h: int, width: int, height: int) -> Box:
    fx, fy = width / SMALL[0], height / SMALL[1]
    return Box(round(x * fx), round(y * fy), round(w * fx), round(h * fy))


class FireDetector:
    """Flame-coloured regions whose pixels switch on and off repeatedly (flicker).

    A passing orange truck switches each pixel at most twice in the window; a flame's edge
    switches many times. Growth of the region adds to the score.
    """

    def __init__(self, min_area: int = 6, min_flicker: float = 0.08) -> None:
        self.min_area = min_area
        self.min_flicker = min_flicker
        self._masks: deque[BoolMask] = deque(maxlen=FIRE_WINDOW)

    def detect(self, small_bgr: Image, width: int, height: int) -> list[Candidate]:
        self._masks.append(fire_colour(small_bgr))
        if len(self._masks) < FIRE_WINDOW // 2:
            return []
        stack = np.stack(self._masks)
        toggles = np.count_nonzero(stack[1:] != stack[:-1], axis=0)
        ever = np.asarray(stack.any(axis=0))
        out = []
        for x, y, w, h, region in _components(ever, self.min_area):
            flicker = float(np.count_nonzero(toggles[region] >= 3)) / int(region.sum())
            if flicker < self.min_flicker or not stack[-1][region].any():
                continue
            half = len(stack) // 2
            early = float(stack[:half, region].sum()) / half
            late = float(stack[half:, region].sum()) / (len(stack) - half)
            growth = 0.1 if late > 1.2 * early > 0 else 0.0
            score = min(0.99, 0.5 + 2.0 * flicker + growth)
            out.append(Candidate("fire", score, _to_frame(x, y, w, h, width, height), "flicker"))
        return out


class SmokeDetector:
    """Grey, semi-transparent change against a slow background that persists and grows.

    Smoke lowers contrast and drifts; it differs from the background by a little (it is
    see-through) and has almost no colour. Pixels must show that in a good share of the
    window, so a person walking past in grey clothes does not qualify.
    """

    def __init__(self, min_area: int = 30, min_persistence: float = 0.4) -> None:
        self.min_area = min_area
        self.min_persistence = min_persistence
        self._bg: npt.NDArray[np.float32] | None = None
        self._frames = 0
        self._prev: npt.NDArray[np.float32] | None = None
        self._masks: deque[BoolMask] = deque(maxlen=SMOKE_WINDOW)

    def detect(self, small_bgr: Image, width: int, height: int) -> list[Candidate]:
        gray = cv2.cvtColor(small_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
        self._frames += 1
        if self._bg is None:
            self._bg = gray.copy()
            return []
        diff = np.abs(gray - self._bg)
        # Smoke changes a pixel gradually; a solid object's edge changes it at once.
        jump = np.abs(gray - self._prev) if self._prev is not None else np.zeros_like(gray)
        self._prev = gray
        # Slow learning: steady smoke stays visible for a minute or so, then becomes scenery.
        # At first a running mean, so whatever passed through the first frame leaves no ghost.
        cv2.accumulateWeighted(gray, self._bg, max(0.02, 1.0 / self._frames))
        chroma = small_bgr.max(axis=2).astype(np.int16) - small_bgr.min(axis=2).astype(np.int16)
        mask = (chroma < 30) & (gray > 80) & (gray < 235) & (diff > 15) & (diff < 90) & (jump < 30)
        self._masks.append(mask)
        if self._frames < SMOKE_WARMUP or len(self._masks) < SMOKE_WINDOW:
            return []
        stack = np.stack(self._masks)
        share = stack.mean(axis=0)
        steady = share >= self.min_persistence
        out = []
        for x, y, w, h, region in _components(steady, self.min_area):
            third = len(stack) // 3
            early = float(stack[:third, region].sum())
            late = float(stack[-third:, region].sum())
            growth = late / early if early > 0 else 2.0
            if growth < 0.85:
                continue  # shrinking: something leaving, not smoke building up
            persistence = float(share[region].mean())
            score = min(0.95, 0.35 + 0.4 * persistence + (0.2 if growth > 1.15 else 0.0))
            out.append(Candidate("smoke", score, _to_frame(x, y, w, h, width, height), "grey"))
        return out
