"""Evidence images: boxes drawn on a copy, and face-blurred copies for other departments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from video.frames import EpisodeUpdate, Image, Snapshot
from video.models import Box


def cascade_path(name: str) -> str:
    """A Haar cascade shipped in opencv-python's data folder (what cv2.data points at)."""
    path = Path(cv2.__file__).parent / "data" / name
    if not path.is_file():
        raise RuntimeError(f"the Haar cascade {name} is not in {path.parent}")
    return str(path)


_COLOURS = {
    "fire": (0, 0, 255),
    "smoke": (160, 160, 160),
    "person": (0, 200, 0),
    "tamper": (0, 165, 255),
    "motion": (255, 128, 0),
}


class FaceBlurrer:
    """Haar frontal-face cascade; each face found is blurred past recognition."""

    def __init__(self) -> None:
        self._cascade = cv2.CascadeClassifier(cascade_path("haarcascade_frontalface_default.xml"))
        if self._cascade.empty():
            raise RuntimeError("the frontal-face Haar cascade did not load from cv2.data")

    def faces(self, image: Image) -> list[Box]:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        # Searched at half size: faces of 28 px and more in the frame (smaller ones identify
        # nobody), about 4x cheaper than a full-size search at OpenCV's default steps.
        half = cv2.equalizeHist(cv2.resize(gray, (gray.shape[1] // 2, gray.shape[0] // 2),
                                           interpolation=cv2.INTER_AREA))  # fmt: skip
        found = self._cascade.detectMultiScale(half, scaleFactor=1.1, minNeighbors=5,
                                               minSize=(14, 14))  # fmt: skip
        return [Box(2 * int(x), 2 * int(y), 2 * int(w), 2 * int(h)) for x, y, w, h in found]

    def blur(self, image: Image, faces: Sequence[Box]) -> Image:
        out = image.copy()
        height, width = out.shape[:2]
        for f in faces:
            # A margin: the cascade box is tight around eyes and mouth, not hair and chin.
            mx, my = f.w // 5, f.h // 5
            x1, y1 = max(0, f.x - mx), max(0, f.y - my)
            x2, y2 = min(width, f.x + f.w + mx), min(height, f.y + f.h + my)
            roi = out[y1:y2, x1:x2]
            # Pixelate then blur: a blur alone can sometimes be partly undone.
            # 5x5 blocks keep skin tone and nothing of eyes, nose or mouth.
            small = cv2.resize(roi, (5, 5), interpolation=cv2.INTER_AREA)
            big = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
            k = max(3, ((x2 - x1) // 4) | 1)
            out[y1:y2, x1:x2] = cv2.GaussianBlur(big, (k, k), 0)
        return out


def draw_boxes(image: Image, updates: Sequence[EpisodeUpdate], caption: str = "") -> Image:
    out = image.copy()
    if caption:
        # Camera, capture time and episode burnt in: the picture says where it came from,
        # and two episodes never share an annotated image (nor an evidence id).
        h = out.shape[0]
        cv2.rectangle(out, (0, h - 20), (out.shape[1], h), (0, 0, 0), -1)
        cv2.putText(out, caption, (4, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255),
                    1, cv2.LINE_AA)  # fmt: skip
    for u in updates:
        colour = _COLOURS.get(u.label, (255, 0, 255))
        b = u.box
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w - 1, b.y + b.h - 1), colour, 2)
        text = f"{u.label} {u.score:.2f}" + (f" {u.zone}" if u.zone else "")
        if u.detail and u.label == "tamper":
            text += f" ({u.detail})"
        cv2.putText(out, text, (b.x + 3, max(14, b.y + 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)  # fmt: skip
    return out


def encode_jpeg(image: Image, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return bytes(np.asarray(buf).tobytes())


def make_snapshot(
    image: Image,
    update: EpisodeUpdate,
    blurrer: FaceBlurrer | None,
    quality: int,
    caption: str = "",
) -> Snapshot:
    """The episode's evidence: annotated and clean, plus face-blurred copies of both."""
    caption = caption or update.episode_id
    annotated = draw_boxes(image, [update], caption)
    faces = blurrer.faces(image) if blurrer is not None else []
    if faces and blurrer is not None:
        clean_shared = blurrer.blur(image, faces)
        annotated_shared = draw_boxes(clean_shared, [update], caption)
    else:
        clean_shared, annotated_shared = image, annotated
    enc = {
        "a": encode_jpeg(annotated, quality),
        "c": encode_jpeg(image, quality),
    }
    return Snapshot(
        episode_id=update.episode_id,
        annotated=enc["a"],
        clean=enc["c"],
        annotated_shared=encode_jpeg(annotated_shared, quality) if faces else enc["a"],
        clean_shared=encode_jpeg(clean_shared, quality) if faces else enc["c"],
        faces=len(faces),
    )
