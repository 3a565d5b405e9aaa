"""Polygons in frame fractions turned into pixel masks, zone tests and box overlap."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from video.models import Box

Polygon = Sequence[tuple[float, float]]
PixelPolygon = npt.NDArray[np.int32]


def to_pixels(polygon: Polygon, width: int, height: int) -> PixelPolygon:
    """Fractions of the frame to pixel corners (the last pixel row and column included)."""
    pts = [(round(x * (width - 1)), round(y * (height - 1))) for x, y in polygon]
    return np.array(pts, dtype=np.int32)


def polygon_mask(polygons: Sequence[Polygon], width: int, height: int) -> npt.NDArray[np.uint8]:
    """255 inside any polygon, 0 elsewhere."""
    mask = np.zeros((height, width), dtype=np.uint8)
    if polygons:
        cv2.fillPoly(mask, [to_pixels(p, width, height) for p in polygons], 255)
    return mask


def anchor(box: Box) -> tuple[int, int]:
    """Where an object stands: the bottom centre of its box (feet, base of a fire)."""
    return box.x + box.w // 2, box.y + box.h - 1


def inside(polygon: PixelPolygon, point: tuple[int, int]) -> bool:
    """True when the point is inside the polygon or on its edge."""
    return cv2.pointPolygonTest(polygon, (float(point[0]), float(point[1])), False) >= 0


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when they do not touch)."""
    x1, y1 = max(a.x, b.x), max(a.y, b.y)
    x2, y2 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def union_box(boxes: Sequence[Box]) -> Box:
    x1 = min(b.x for b in boxes)
    y1 = min(b.y for b in boxes)
    x2 = max(b.x + b.w for b in boxes)
    y2 = max(b.y + b.h for b in boxes)
    return Box(x1, y1, x2 - x1, y2 - y1)


def scale_box(box: Box, fx: float, fy: float) -> Box:
    return Box(round(box.x * fx), round(box.y * fy), round(box.w * fx), round(box.h * fy))


def clip_box(box: Box, width: int, height: int) -> Box:
    x1, y1 = max(0, box.x), max(0, box.y)
    x2, y2 = min(width, box.x + box.w), min(height, box.y + box.h)
    return Box(x1, y1, max(0, x2 - x1), max(0, y2 - y1))
