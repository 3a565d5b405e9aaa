"""Zones, object masks, filters and tracking, table-driven."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from video.frames import Candidate
from video.geometry import iou, polygon_mask
from video.models import Box
from video.settings import CameraSettings, FilterSettings, VideoSettings
from video.tracking import Tracker
from video.zones import ZoneMap

W, H = 640, 480
# Left half is the tank farm, the right third a road; a mask over the top-left corner.
CAMERA = CameraSettings(
    id="cam",
    zones=[
        {"name": "tank_farm", "polygon": [(0, 0), (0.5, 0), (0.5, 1), (0, 1)]},
        {"name": "road", "polygon": [(0.66, 0), (1, 0), (1, 1), (0.66, 1)]},
    ],
    object_masks=[{"polygon": [(0, 0), (0.2, 0), (0.2, 0.2), (0, 0.2)]}],
    filters={"person": FilterSettings(min_area=1000, max_area=50_000, min_score=0.6)},
)
SETTINGS = VideoSettings(cameras=[CAMERA])


def zone_map() -> ZoneMap:
    return ZoneMap(CAMERA, W, H, lambda label: SETTINGS.filter_for(CAMERA, label))


@pytest.mark.parametrize(
    ("label", "score", "box", "expected"),
    [
        # (kept?, zone): the zone is where the box's bottom centre stands
        ("person", 0.9, Box(100, 200, 40, 100), (True, "tank_farm")),
        ("person", 0.9, Box(500, 200, 40, 100), (True, "road")),
        ("person", 0.9, Box(360, 200, 40, 100), (True, None)),  # between zones
        ("person", 0.9, Box(310, 200, 40, 100), (True, None)),  # feet at x=330: outside
        ("person", 0.9, Box(280, 200, 40, 100), (True, "tank_farm")),  # feet at x=300
        ("person", 0.9, Box(20, 10, 40, 60), (False, None)),  # feet in the object mask
        ("person", 0.55, Box(100, 200, 40, 100), (False, None)),  # below person min_score
        ("person", 0.9, Box(100, 200, 20, 40), (False, None)),  # 800 px < min_area
        ("person", 0.9, Box(0, 0, 300, 400), (False, None)),  # 120,000 px > max_area
        ("fire", 0.55, Box(100, 200, 20, 20), (True, "tank_farm")),  # default filter 0.5
        ("fire", 0.45, Box(100, 200, 20, 20), (False, None)),
        ("tamper", 0.9, Box(0, 0, W, H), (True, None)),  # frame-level: no mask, no zone
        ("motion", 0.9, Box(100, 200, 10, 10), (False, None)),  # video-wide motion min_area
    ],
)
def test_place(label: str, score: float, box: Box, expected: tuple[bool, str | None]) -> None:
    placed = zone_map().place([Candidate(label, score, box)])
    kept, zone = expected
    assert (bool(placed), placed[0].zone if placed else None) == (kept, zone)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Box(0, 0, 10, 10), Box(0, 0, 10, 10), 1.0),
        (Box(0, 0, 10, 10), Box(5, 0, 10, 10), 50 / 150),
        (Box(0, 0, 10, 10), Box(10, 10, 5, 5), 0.0),
        (Box(0, 0, 10, 10), Box(2, 2, 4, 4), 16 / 100),
    ],
)
def test_iou(a: Box, b: Box, expected: float) -> None:
    assert iou(a, b) == pytest.approx(expected)


def test_polygon_mask_covers_the_polygon() -> None:
    mask = polygon_mask([[(0, 0), (0.5, 0), (0.5, 1), (0, 1)]], 100, 50)
    assert mask[25, 10] == 255
    assert mask[25, 80] == 0


def _tracker(min_frames: int = 3) -> Tracker:
    f = FilterSettings(min_frames=min_frames, min_score=0)
    return Tracker("cam", lambda label: f, 0.3, gap_s=2.0, update_interval_s=1.0)


def _seen(tracker: Tracker, boxes: list[Box], t: float) -> list[tuple[str, bool, int]]:
    from video.zones import Placed

    placed = [Placed(Candidate("person", 0.9, b), None) for b in boxes]
    return [(u.episode_id, u.started, u.frames) for u in tracker.update(placed, t)]


@pytest.mark.parametrize(
    ("min_frames", "frames_seen", "episodes"),
    [(1, 1, 1), (3, 2, 0), (3, 3, 1), (5, 4, 0), (5, 10, 1)],
)
def test_min_frames(min_frames: int, frames_seen: int, episodes: int) -> None:
    tr = _tracker(min_frames)
    started = []
    for i in range(frames_seen):
        started += [e for e, s, _ in _seen(tr, [Box(100 + 2 * i, 100, 40, 80)], i * 0.2) if s]
    assert len(started) == episodes


def test_object_that_stays_is_one_episode_reported_every_interval() -> None:
    tr = _tracker(3)
    out = []
    for i in range(50):  # 10 s at 5 fps, drifting slowly
        out += _seen(tr, [Box(100 + i, 100, 40, 80)], i * 0.2)
    assert len({e for e, _, _ in out}) == 1
    assert [s for _, s, _ in out].count(True) == 1
    assert 8 <= len(out) <= 11  # the start, then about once a second
    frames = [n for _, _, n in out]
    assert frames == sorted(frames)
    assert frames[0] == 3
    assert frames[-1] >= 46


def test_two_objects_are_two_episodes_and_gap_ends_an_episode() -> None:
    tr = _tracker(1)
    a, b = Box(0, 0, 40, 80), Box(300, 0, 40, 80)
    first = _seen(tr, [a, b], 0.0)
    assert len({e for e, _, _ in first}) == 2
    again = _seen(tr, [a], 1.5)  # within the 2 s gap: same episode
    assert [e for e, _, _ in again] == [first[0][0]]
    later = _seen(tr, [a], 5.0)  # unseen for 3.5 s: a new episode
    assert later[0][1] is True
    assert later[0][0] not in {e for e, _, _ in first}


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ({"id": "bad id"}, "id"),
        ({"id": "c", "detectors": ["onnx"]}, "no 'onnx' model"),
        ({"id": "c", "url": "ftp://x"}, "url must start with"),
        ({"id": "c", "zones": [{"name": "z", "polygon": [(0, 0), (2, 0), (0, 1)]}]}, "fraction"),
        ({"id": "c", "zones": [{"name": "z", "polygon": [(0, 0), (1, 0)]}]}, "at least 3"),
        ({"id": "c", "filters": {"person": {"min_area": 10, "max_area": 5}}}, "below min_area"),
        ({"id": "c", "fps": 0}, "greater than 0"),
        ({"id": "c", "colour": "red"}, "Extra inputs"),
    ],
)
def test_camera_settings_errors_name_the_rule(camera: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraSettings.model_validate(camera)


def test_duplicate_camera_ids_are_refused() -> None:
    with pytest.raises(ValidationError, match="repeated: a"):
        VideoSettings(cameras=[{"id": "a"}, {"id": "a"}])


@pytest.mark.parametrize(
    ("video_filters", "camera_filters", "label", "expected_min_frames"),
    [
        ({}, {}, "tamper", 5),  # built-in
        ({}, {}, "fire", 3),  # FilterSettings default
        ({"fire": {"min_frames": 4}}, {}, "tamper", 5),  # other labels keep built-ins
        ({"tamper": {"min_frames": 2}}, {}, "tamper", 2),  # video-wide wins over built-in
        ({"tamper": {"min_frames": 2}}, {"tamper": {"min_frames": 7}}, "tamper", 7),
    ],
)
def test_filter_precedence(
    video_filters: dict[str, Any],
    camera_filters: dict[str, Any],
    label: str,
    expected_min_frames: int,
) -> None:
    cam = CameraSettings.model_validate({"id": "c", "filters": camera_filters})
    settings = VideoSettings.model_validate({"filters": video_filters, "cameras": [cam]})
    assert settings.filter_for(cam, label).min_frames == expected_min_frames
