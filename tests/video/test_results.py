"""Worker results → evidence and detections (the handler, fed by an in-process pipeline)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from subjects.models import CreditGrade, DeviceContext
from video.evidence import DirectoryOwnership
from video.frames import FrameTask
from video.models import Detection
from video.pipeline import CameraPipeline
from video.service import VideoService
from video.settings import CameraSettings, DetectorName, VideoSettings
from video.synthetic import Scene, SyntheticCamera


class Sink:
    def __init__(self) -> None:
        self.seen: list[Detection] = []

    def detections_observed(self, detections: Sequence[Detection]) -> None:
        self.seen.extend(detections)


@pytest.fixture
def pool(db_url: str) -> Any:
    with ConnectionPool(db_url, min_size=1, max_size=4, open=True) as p:
        yield p


def feed(svc: VideoService, scene: Scene, frames: int) -> None:
    camera = svc.settings.cameras[0]
    pipe = CameraPipeline(camera, svc.settings)
    cam = SyntheticCamera(scene)
    for i in range(frames):
        task = FrameTask(camera.id, 1_764_000_000 + i / 5, 1_764_000_000 + i / 5, cam.jpeg(i))
        svc._on_result(task, pipe.process(task))


def settings() -> VideoSettings:
    return VideoSettings(cameras=[CameraSettings(id="cam-f", detectors=[DetectorName.FIRE])])


def test_every_update_of_an_episode_carries_its_evidence_id(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    sink = Sink()
    registry = CollectorRegistry()
    svc = VideoService(settings(), pool, registry, tmp_path, detection_sink=sink)
    feed(svc, Scene(movers=0, flame=True), 40)
    assert sink.seen, "no detection reached the sink"
    assert {d.label for d in sink.seen} == {"fire"}
    assert len({d.episode_id for d in sink.seen}) == 1
    ids = {d.evidence_id for d in sink.seen}
    assert len(ids) == 1
    (evidence_id,) = ids
    assert evidence_id is not None
    record = svc.evidence.record(evidence_id)
    assert record is not None
    assert record.captured_at == sink.seen[0].time
    assert registry.get_sample_value("offsite_video_episodes_total", {"label": "fire"}) == 1
    assert registry.get_sample_value("offsite_video_detections_total", {"label": "fire"}) == len(
        sink.seen
    )
    assert (registry.get_sample_value("offsite_video_evidence_bytes_total") or 0) > 0


def test_detections_still_flow_when_evidence_cannot_be_stored(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the evidence directory should be")
    sink = Sink()
    registry = CollectorRegistry()
    s = settings().model_copy(update={"evidence_dir": blocked})
    svc = VideoService(s, pool, registry, tmp_path, detection_sink=sink)
    feed(svc, Scene(movers=0, flame=True), 20)
    assert sink.seen
    assert {d.evidence_id for d in sink.seen} == {None}
    assert registry.get_sample_value("offsite_video_evidence_errors_total") == 1


def test_ownership_from_the_subject_directory() -> None:
    ctx = DeviceContext("cam-1", "camera", "91310000MA1FL4CT3X", "Co.", "chemicals", "G1",
                        CreditGrade.B, departments=frozenset({"EMB", "EEB"}))  # fmt: skip

    class Directory:
        def context(self, device_id: str) -> DeviceContext | None:
            return ctx if device_id == "cam-1" else None

    owners = DirectoryOwnership(Directory())
    assert owners.owner_departments("cam-1") == frozenset({"EMB", "EEB"})
    assert owners.owner_departments("cam-2") is None
