"""Synthetic camera scenes: moving objects, flickering flames, smoke, a lens covered later."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from video.frames import Image
from video.snapshot import encode_jpeg


@dataclass(frozen=True, slots=True)
class Scene:
    """What a synthetic camera shows; every frame is a pure function of (scene, index)."""

    width: int = 640
    height: int = 480
    fps: float = 5.0
    seed: int = 1
    movers: int = 2  # dark figures walking across the view
    flame: bool = False  # a flickering flame-coloured region
    flame_at: tuple[float, float] = (0.72, 0.78)  # its base, as fractions of the frame
    flame_from_s: float = 0.0
    smoke: bool = False  # a grey plume that rises and grows
    smoke_from_s: float = 0.0
    cover_after_s: float | None = None  # the lens is covered from this time on
    noise: float = 2.0  # sensor noise (grey levels, standard deviation)


@dataclass(frozen=True, slots=True)
class SyntheticFrame:
    index: int
    offset_s: float  # time since the first frame
    jpeg: bytes


class SyntheticCamera:
    """Renders frames of a Scene as BGR images or JPEG bytes."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self._background = _background(scene)

    def frame(self, index: int) -> Image:
        s = self.scene
        t = index / s.fps
        rng = np.random.default_rng(s.seed * 1_000_003 + index)
        if s.cover_after_s is not None and t >= s.cover_after_s:
            img = np.full((s.height, s.width, 3), 14, dtype=np.uint8)
            return _noisy(img, rng, 1.5)
        img = self._background.copy()
        for k in range(s.movers):
            _draw_mover(img, k, index, s)
        if s.smoke and t >= s.smoke_from_s:
            _draw_smoke(img, t - s.smoke_from_s, s, rng)
        if s.flame and t >= s.flame_from_s:
            _draw_flame(img, s, rng)
        return _noisy(img, rng, s.noise)

    def jpeg(self, index: int, quality: int = 85) -> bytes:
        return encode_jpeg(self.frame(index), quality)


def synthetic_frames(
    scene: Scene, count: int | None = None, quality: int = 85
) -> Iterator[SyntheticFrame]:
    """JPEG frames of `scene`, `count` of them (None: without end), paced by scene.fps."""
    camera = SyntheticCamera(scene)
    index = 0
    while count is None or index < count:
        yield SyntheticFrame(index, index / scene.fps, camera.jpeg(index, quality))
        index += 1


def _noisy(img: Image, rng: np.random.Generator, sigma: float) -> Image:
    if sigma <= 0:
        return img
    noise = rng.normal(0.0, sigma, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def _background(s: Scene) -> Image:
    """A yard: sky, buildings with windows, ground with texture (edges keep it sharp)."""
    rng = np.random.default_rng(s.seed)
    w, h = s.width, s.height
    img = np.zeros((h, w, 3), dtype=np.uint8)
    horizon = int(h * 0.45)
    for y in range(horizon):
        v = 150 + 80 * y // max(1, horizon)
        img[y, :] = (min(255, v + 30), v, v - 40)
    img[horizon:, :] = (90, 105, 110)
    tex = rng.integers(-18, 18, (h - horizon, w, 1), dtype=np.int16)
    img[horizon:] = np.clip(img[horizon:].astype(np.int16) + tex, 0, 255).astype(np.uint8)
    x = 0
    while x < w:
        bw = int(rng.integers(w // 10, w // 5))
        bh = int(rng.integers(h // 6, horizon))
        colour = tuple(int(c) for c in rng.integers(60, 140, 3))
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), colour, -1)
        for wy in range(horizon - bh + 8, horizon - 12, 18):
            for wx in range(x + 6, x + bw - 10, 16):
                cv2.rectangle(img, (wx, wy), (wx + 7, wy + 9), (40, 40, 30), -1)
        x += bw + int(rng.integers(4, 30))
    cv2.line(img, (0, int(h * 0.8)), (w, int(h * 0.7)), (200, 200, 200), 3)
    return img


def _draw_mover(img: Image, k: int, index: int, s: Scene) -> None:
    w, h = s.width, s.height
    bw, bh = w // 16, h // 5
    span = w - bw
    speed = 9 + 4 * k
    pos = (index * speed + k * span // 2) % (2 * span)
    x = pos if pos < span else 2 * span - pos  # walks back and forth
    y = int(h * 0.5) + k * (h // 10)
    colour = (40 + 30 * k, 35, 30 + 20 * k)
    cv2.ellipse(img, (x + bw // 2, y + bh // 6), (bw // 4, bh // 8), 0, 0, 360, colour, -1)
    cv2.rectangle(img, (x + bw // 6, y + bh // 4), (x + 5 * bw // 6, y + 2 * bh // 3), colour, -1)
    cv2.rectangle(img, (x + bw // 4, y + 2 * bh // 3), (x + 3 * bw // 4, y + bh), colour, -1)


def _draw_flame(img: Image, s: Scene, rng: np.random.Generator) -> None:
    cx, base = int(s.flame_at[0] * s.width), int(s.flame_at[1] * s.height)
    rx, ry = s.width // 22, s.height // 8
    for scale, colour in (
        (1.0, (10, 60, 235)),  # red-orange rim
        (0.7, (20, 150, 255)),  # orange
        (0.4, (130, 230, 255)),  # yellow core
    ):
        f = scale * float(rng.uniform(0.55, 1.1))
        jx = int(rng.integers(-rx // 3, rx // 3 + 1))
        ax, ay = max(2, int(rx * f)), max(3, int(ry * f))
        cv2.ellipse(img, (cx + jx, base - ay), (ax, ay), 0, 0, 360, colour, -1)
        # A tongue above: flames break up at the top.
        tip = int(ry * f * float(rng.uniform(0.2, 0.6)))
        cv2.ellipse(img, (cx + jx // 2, base - 2 * ay - tip // 2), (ax // 3, tip // 2 + 1),
                    0, 0, 360, colour, -1)  # fmt: skip


def _draw_smoke(img: Image, age_s: float, s: Scene, rng: np.random.Generator) -> None:
    cx, base = int(s.width * 0.3), int(s.height * 0.75)
    grow = min(1.0, 0.25 + age_s / 20)
    overlay = img.copy()
    for i in range(6):
        r = int(s.width * 0.05 * grow * (1 + 0.4 * i))
        y = base - int(i * s.height * 0.07 * grow)
        x = cx + int(8 * np.sin(age_s * 1.5 + i)) + int(rng.integers(-3, 4))
        cv2.circle(overlay, (x, y), max(2, r), (178, 178, 178), -1)
    cv2.addWeighted(overlay, 0.55, img, 0.45, 0, dst=img)
