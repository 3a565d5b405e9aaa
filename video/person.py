"""People: OpenCV's HOG pedestrian detector and the full-body Haar cascade, on motion regions."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from video.frames import Candidate
from video.geometry import clip_box, iou
from video.models import Box
from video.snapshot import cascade_path

_MIN_W, _MIN_H = 80, 160  # HOG's window is 64x128; a margin lets it slide


def _expand(box: Box, width: int, height: int) -> Box:
    w = max(_MIN_W, round(box.w * 1.3))
    h = max(_MIN_H, round(box.h * 1.3))
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    return clip_box(Box(cx - w // 2, cy - h // 2, w, h), width, height)


def merge_regions(regions: Sequence[Box]) -> list[Box]:
    """Overlapping regions merged, so no pixel is searched twice."""
    boxes = list(regions)
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if iou(boxes[i], boxes[j]) > 0:
                    a, b = boxes[i], boxes[j]
                    x1, y1 = min(a.x, b.x), min(a.y, b.y)
                    x2, y2 = max(a.x + a.w, b.x + b.w), max(a.y + a.h, b.y + b.h)
                    boxes[i] = Box(x1, y1, x2 - x1, y2 - y1)
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return boxes


class PersonDetector:
    """HOG boxes score by SVM margin; a Haar full-body box alone is capped lower;
    both agreeing on one box raises the score."""

    def __init__(self) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(
            np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector(), dtype=np.float32)
        )
        self._body = cv2.CascadeClassifier(cascade_path("haarcascade_fullbody.xml"))
        if self._body.empty():
            raise RuntimeError("the full-body Haar cascade did not load from cv2.data")

    def detect(
        self, frame: npt.NDArray[np.uint8], regions: Sequence[Box], max_regions: int = 6
    ) -> list[Candidate]:
        height, width = frame.shape[:2]
        rois = merge_regions([_expand(r, width, height) for r in regions])
        rois.sort(key=lambda b: b.w * b.h, reverse=True)
        hog: list[tuple[Box, float]] = []
        haar: list[Box] = []
        for roi in rois[:max_regions]:
            if roi.w < 64 or roi.h < 128:
                continue
            crop = frame[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w]
            rects, weights = self._hog.detectMultiScale(
                crop, winStride=(8, 8), padding=(8, 8), scale=1.05
            )
            for (x, y, w, h), wt in zip(rects, np.ravel(weights), strict=True):
                hog.append((Box(int(x) + roi.x, int(y) + roi.y, int(w), int(h)), float(wt)))
            gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
            for x, y, w, h in self._body.detectMultiScale(
                gray, scaleFactor=1.1, minNeighbors=3, minSize=(32, 64)
            ):
                haar.append(Box(int(x) + roi.x, int(y) + roi.y, int(w), int(h)))
        return combine(hog, haar)


def combine(hog: Sequence[tuple[Box, float]], haar: Sequence[Box]) -> list[Candidate]:
    """One candidate per person: HOG and Haar boxes that overlap are one, scored higher."""
    found: list[Candidate] = []
    used: set[int] = set()
    for box, weight in sorted(hog, key=lambda bw: -bw[1]):
        score = min(0.95, 0.4 + 0.3 * weight)
        for i, hb in enumerate(haar):
            if i not in used and iou(box, hb) > 0.3:
                used.add(i)
                score = min(0.99, score + 0.15)
        if all(iou(box, c.box) < 0.4 for c in found):
            found.append(Candidate("person", score, box, "hog"))
    for i, hb in enumerate(haar):
        if i not in used and all(iou(hb, c.box) < 0.4 for c in found):
            found.append(Candidate("person", 0.55, hb, "haar"))
    return found
