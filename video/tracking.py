"""Light IoU tracking: one object that stays in view is one detection episode."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from video.frames import EpisodeUpdate
from video.geometry import iou
from video.models import Box
from video.settings import FilterSettings
from video.zones import Placed

# Labels with one object per camera: the moving part of the view, the tamper state.
SINGLE_LABELS = frozenset({"motion", "tamper"})


@dataclass(slots=True)
class Track:
    label: str
    box: Box
    score: float
    zone: str | None
    detail: str | None
    first_t: float
    last_t: float
    hits: int
    episode_id: str
    confirmed: bool = False
    last_report_t: float = 0.0


@dataclass(eq=False)
class Tracker:
    """Matches each frame's placed candidates to tracks by IoU, per label.

    A track becomes an episode after `min_frames` hits (its label's filter); it is reported
    when it starts and then every `update_interval_s` while seen; it ends when unseen for
    `gap_s`. Unconfirmed tracks unseen for as long are forgotten.
    """

    camera_id: str
    filter_for: Callable[[str], FilterSettings]
    iou_threshold: float
    gap_s: float
    update_interval_s: float
    tracks: list[Track] = field(default_factory=list, init=False)

    def update(self, placed: Sequence[Placed], t: float) -> list[EpisodeUpdate]:
        self.tracks = [tr for tr in self.tracks if t - tr.last_t <= self.gap_s]
        out: list[EpisodeUpdate] = []
        by_label: dict[str, list[Placed]] = {}
        for p in placed:
            by_label.setdefault(p.candidate.label, []).append(p)
        for label, items in by_label.items():
            tracks = [tr for tr in self.tracks if tr.label == label]
            for matched, p in self._match(label, tracks, items):
                track = matched
                if track is None:
                    track = Track(
                        label=label,
                        box=p.candidate.box,
                        score=p.candidate.score,
                        zone=p.zone,
                        detail=p.candidate.detail,
                        first_t=t,
                        last_t=t,
                        hits=0,
                        episode_id=f"{self.camera_id}:{label}:{uuid.uuid4().hex[:12]}",
                    )
                    self.tracks.append(track)
                track.hits += 1
                track.last_t = t
                track.box, track.score = p.candidate.box, p.candidate.score
                track.zone, track.detail = p.zone, p.candidate.detail
                started = False
                if not track.confirmed:
                    if track.hits < self.filter_for(label).min_frames:
                        continue
                    track.confirmed = started = True
                elif t - track.last_report_t < self.update_interval_s:
                    continue
                track.last_report_t = t
                out.append(
                    EpisodeUpdate(
                        label=label,
                        score=track.score,
                        box=track.box,
                        zone=track.zone,
                        episode_id=track.episode_id,
                        frames=track.hits,
                        started=started,
                        detail=track.detail,
                    )
                )
        return out

    def _match(
        self, label: str, tracks: list[Track], items: list[Placed]
    ) -> list[tuple[Track | None, Placed]]:
        if label in SINGLE_LABELS:
            best = max(items, key=lambda p: p.candidate.score)
            return [(tracks[0] if tracks else None, best)]
        pairs = sorted(
            (
                (iou(tr.box, p.candidate.box), ti, pi)
                for ti, tr in enumerate(tracks)
                for pi, p in enumerate(items)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_p: set[int] = set()
        matched: list[tuple[Track | None, Placed]] = []
        for overlap, ti, pi in pairs:
            if overlap < self.iou_threshold:
                break
            if ti in used_t or pi in used_p:
                continue
            used_t.add(ti)
            used_p.add(pi)
            matched.append((tracks[ti], items[pi]))
        matched += [(None, p) for pi, p in enumerate(items) if pi not in used_p]
        return matched
