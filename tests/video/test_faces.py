"""Face blurring on a real photograph (scikit-image's astronaut sample)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage import data

from video.frames import EpisodeUpdate
from video.models import Box
from video.snapshot import FaceBlurrer, make_snapshot


def astronaut_bgr() -> np.ndarray:
    image: np.ndarray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    return image


def test_face_found_and_blurred_beyond_detection() -> None:
    image = astronaut_bgr()
    blurrer = FaceBlurrer()
    faces = blurrer.faces(image)
    assert len(faces) == 1
    f = faces[0]
    # Eileen Collins' face is in the upper middle of the 512x512 photo.
    assert 150 < f.x + f.w / 2 < 300
    assert 50 < f.y + f.h / 2 < 200
    blurred = blurrer.blur(image, faces)
    before = cv2.Laplacian(cv2.cvtColor(image[f.y : f.y + f.h, f.x : f.x + f.w],
                                        cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()  # fmt: skip
    after = cv2.Laplacian(cv2.cvtColor(blurred[f.y : f.y + f.h, f.x : f.x + f.w],
                                       cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()  # fmt: skip
    assert after < before / 20
    # Away from the face the picture is untouched.
    assert np.array_equal(blurred[400:, 400:], image[400:, 400:])


def test_snapshot_keeps_original_and_blurs_shared_copies() -> None:
    image = astronaut_bgr()
    update = EpisodeUpdate("person", 0.9, Box(100, 20, 300, 480), None, "ep1", 3, True)
    snap = make_snapshot(image, update, FaceBlurrer(), 90)
    assert snap.faces == 1
    assert snap.annotated != snap.annotated_shared
    assert snap.clean != snap.clean_shared
    clean = cv2.imdecode(np.frombuffer(snap.clean, np.uint8), cv2.IMREAD_COLOR)
    shared = cv2.imdecode(np.frombuffer(snap.clean_shared, np.uint8), cv2.IMREAD_COLOR)
    assert clean is not None
    assert shared is not None
    (f,) = FaceBlurrer().faces(clean)

    def detail(img: np.ndarray) -> float:
        crop = cv2.cvtColor(img[f.y : f.y + f.h, f.x : f.x + f.w], cv2.COLOR_BGR2GRAY)
        return float(cv2.Laplacian(crop, cv2.CV_64F).var())

    assert detail(shared) < detail(clean) / 20


def test_no_face_means_shared_copy_is_the_original() -> None:
    image = np.full((240, 320, 3), 90, np.uint8)
    update = EpisodeUpdate("fire", 0.9, Box(10, 10, 50, 50), None, "ep2", 3, True)
    snap = make_snapshot(image, update, FaceBlurrer(), 90)
    assert snap.faces == 0
    assert snap.annotated == snap.annotated_shared
    assert snap.clean == snap.clean_shared
