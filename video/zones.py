"""Per-camera zones, object masks and filters applied to a frame's candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from video.frames import Candidate
from video.geometry import PixelPolygon, anchor, inside, to_pixels
from video.settings import CameraSettings, FilterSettings

# Frame-level labels: the whole view is the object, so zones and masks do not apply.
FRAME_LABELS = frozenset({"tamper"})


@dataclass(frozen=True, slots=True)
class Placed:
    """A candidate that passed the masks and filters, with the zone it is in."""

    candidate: Candidate
    zone: str | None


class ZoneMap:
    """Zones and object masks in pixels for one frame size."""

    def __init__(
        self,
        camera: CameraSettings,
        width: int,
        height: int,
        filter_for: Callable[[str], FilterSettings],
    ) -> None:
        self.zones: list[tuple[str, PixelPolygon]] = [
            (z.name, to_pixels(z.polygon, width, height)) for z in camera.zones
        ]
        self.masks = [to_pixels(m.polygon, width, height) for m in camera.object_masks]
        self.filter_for = filter_for

    def zone_of(self, point: tuple[int, int]) -> str | None:
        """The first configured zone holding the point (config order breaks overlaps)."""
        for name, poly in self.zones:
            if inside(poly, point):
                return name
        return None

    def place(self, candidates: Sequence[Candidate]) -> list[Placed]:
        """Drop masked and filtered candidates; name the zone of the rest."""
        placed: list[Placed] = []
        for c in candidates:
            f = self.filter_for(c.label)
            area = c.box.w * c.box.h
            if c.score < f.min_score or area < f.min_area:
                continue
            if f.max_area is not None and area > f.max_area:
                continue
            if c.label in FRAME_LABELS:
                placed.append(Placed(c, None))
                continue
            point = anchor(c.box)
            if any(inside(m, point) for m in self.masks):
                continue
            placed.append(Placed(c, self.zone_of(point)))
        return placed
