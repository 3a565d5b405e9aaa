"""Frame intake on a real database and real worker processes: dead letters, drops, status."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from ingest.models import DeviceStatus, FrameMessage
from tests.helpers import wait_until
from video.cameras import CameraRegistry, CameraState
from video.frames import FrameTask
from video.intake import RateCap
from video.metrics import VideoMetrics
from video.service import VideoService
from video.settings import CameraSettings, VideoSettings
from video.synthetic import Scene, SyntheticCamera
from video.workers import Worker


@pytest.fixture
def pool(db_url: str) -> Any:
    with ConnectionPool(db_url, min_size=1, max_size=4, open=True) as p:
        yield p


def frame(camera: str, payload: bytes) -> FrameMessage:
    now = datetime.now(UTC)
    return FrameMessage(camera, payload, None, now)


def test_bad_frames_are_dead_lettered_and_good_ones_still_flow(
    pool: ConnectionPool, tmp_path: Path
) -> None:
    settings = VideoSettings(
        cameras=[CameraSettings(id="cam-1", fps=30)],
        workers=1,
        max_frame_bytes=100_000,
        dead_letter_payload_bytes=64,
    )
    registry = CollectorRegistry()
    svc = VideoService(settings, pool, registry, tmp_path)
    good = SyntheticCamera(Scene(movers=0)).jpeg(0, quality=60)
    assert len(good) < 100_000
    big = b"\xff\xd8" + bytes(150_000)
    truncated = good[:700]
    svc.start()
    try:
        svc.frame_received(frame("nobody", good))
        svc.frame_received(frame("cam-1", big))
        svc.frame_received(frame("cam-1", b"<html>not an image</html>"))
        svc.frame_received(frame("cam-1", truncated))
        wait_until(svc.idle, what="idle")
        time.sleep(0.05)  # past the 30 fps rate cap, so the good frame is not dropped
        svc.frame_received(frame("cam-1", good))

        def rows() -> list[tuple[Any, ...]]:
            with pool.connection() as conn:
                return conn.execute(
                    "SELECT topic, device_id, reason, detail, payload, payload_size,"
                    " payload_sha256 FROM dead_letters ORDER BY id"
                ).fetchall()

        found = wait_until(lambda: len(rows()) == 4 and rows(), what="4 dead letters")
        wait_until(
            lambda: registry.get_sample_value("offsite_video_frames_decoded_total") == 1,
            what="the good frame decoded",
        )
    finally:
        svc.stop()
    by_reason = {r[2]: r for r in found}
    assert set(by_reason) == {"unknown_camera", "too_large", "not_jpeg", "undecodable"}
    unknown = by_reason["unknown_camera"]
    assert unknown[0] == "offsite/v1/devices/nobody/frames"
    assert unknown[1] == "nobody"
    assert "not configured" in unknown[3]
    assert "150002 bytes" in by_reason["too_large"][3]
    for r in found:
        assert len(r[4]) <= 64  # payload capped
    assert by_reason["undecodable"][5] == len(truncated)
    assert by_reason["undecodable"][6] == hashlib.sha256(truncated).hexdigest()
    for reason in by_reason:
        assert (
            registry.get_sample_value("offsite_video_frames_rejected_total", {"reason": reason})
            == 1
        )


def test_full_queue_drops_the_oldest_and_counts() -> None:
    registry = CollectorRegistry()
    metrics = VideoMetrics(registry)
    worker = Worker(0, VideoSettings(queue_frames=3), metrics, lambda task, result: None)
    cam = CameraSettings(id="c")
    for i in range(5):
        worker.submit(cam, FrameTask("c", float(i), float(i), b"\xff\xd8"))
    assert worker.depth == 3
    assert [t.time for _, t in worker._queue] == [2.0, 3.0, 4.0]
    value = registry.get_sample_value("offsite_video_frames_dropped_total",
                                      {"reason": "queue_full"})  # fmt: skip
    assert value == 2


@pytest.mark.parametrize(
    ("fps", "arrivals", "admitted"),
    [
        # a camera at twice its cap: the saved burst, then every other frame
        (5.0, [0.1 * i for i in range(10)], [0.0, 0.1, 0.2, 0.4, 0.6, 0.8]),
        # on time but jittery (0.15 s, then 0.25 s): nothing dropped
        (5.0, [0.0, 0.15, 0.4, 0.55, 0.8, 0.95, 1.2], [0.0, 0.15, 0.4, 0.55, 0.8, 0.95, 1.2]),
        (1.0, [0.0, 0.5, 0.95, 1.5, 2.0, 2.2], [0.0, 0.5, 1.5, 2.0]),
    ],
)
def test_rate_cap(fps: float, arrivals: list[float], admitted: list[float]) -> None:
    cap = RateCap()
    got = [t for t in arrivals if cap.admit("c", fps, t)]
    assert got == pytest.approx(admitted)


def test_rate_cap_holds_the_sustained_rate() -> None:
    cap = RateCap()
    arrivals = [i / 25 for i in range(25 * 60)]  # a camera sending 25 fps for a minute
    admitted = sum(cap.admit("c", 5.0, t) for t in arrivals)
    assert 300 <= admitted <= 302  # 5 fps x 60 s, plus the initial burst


class Statuses:
    def __init__(self) -> None:
        self.seen: list[DeviceStatus] = []

    def status_changed(self, status: DeviceStatus) -> None:
        self.seen.append(status)


def test_camera_registers_goes_offline_and_back(pool: ConnectionPool) -> None:
    now = [datetime(2026, 11, 26, 12, 0, tzinfo=UTC)]
    sink = Statuses()
    settings = VideoSettings(cameras=[{"id": "cam-1"}], offline_after_s=60)
    reg = CameraRegistry(settings, pool, VideoMetrics(CollectorRegistry()), [sink],
                         clock=lambda: now[0])  # fmt: skip

    def row() -> tuple[Any, ...] | None:
        with pool.connection() as conn:
            return conn.execute(
                "SELECT kind, first_seen, last_seen, online FROM devices WHERE device_id = 'cam-1'"
            ).fetchone()

    reg.tick()
    assert row() is None  # never seen: nothing to register yet
    reg.seen("cam-1", now[0])
    reg.tick()
    assert row() == ("camera", now[0], now[0], True)
    assert [(s.device_id, s.online) for s in sink.seen] == [("cam-1", True)]
    now[0] += timedelta(seconds=30)
    reg.seen("cam-1", now[0])
    now[0] += timedelta(seconds=61)
    reg.tick()
    r = row()
    assert r is not None
    assert r[3] is False
    assert r[2] == now[0] - timedelta(seconds=61)  # last_seen is the last frame
    assert [s.online for s in sink.seen] == [True, False]
    assert reg.statuses()[0].state is CameraState.OFFLINE
    reg.seen("cam-1", now[0])
    reg.tick()
    assert [s.online for s in sink.seen] == [True, False, True]
    # A restart reads the state back and does not announce the camera again.
    reg2 = CameraRegistry(settings, pool, VideoMetrics(CollectorRegistry()), [sink],
                          clock=lambda: now[0])  # fmt: skip
    reg2.load()
    reg2.tick()
    assert reg2.statuses()[0].state is CameraState.ONLINE
    assert len(sink.seen) == 3


def test_unknown_cameras_accepted_when_configured_so(pool: ConnectionPool) -> None:
    settings = VideoSettings(accept_unknown_cameras=True)
    reg = CameraRegistry(settings, pool, VideoMetrics(CollectorRegistry()))
    cam = reg.lookup("new-cam")
    assert cam is not None
    assert cam.id == "new-cam"
    assert reg.lookup("new-cam") is cam
    assert [c.id for c in reg.cameras()] == ["new-cam"]


def test_a_crashed_worker_is_replaced(pool: ConnectionPool, tmp_path: Path) -> None:
    settings = VideoSettings(cameras=[CameraSettings(id="cam-1", fps=30)], workers=1)
    registry = CollectorRegistry()
    svc = VideoService(settings, pool, registry, tmp_path)
    cam = SyntheticCamera(Scene(movers=0))
    svc.start()
    try:
        svc.frame_received(frame("cam-1", cam.jpeg(0)))
        wait_until(lambda: registry.get_sample_value("offsite_video_frames_decoded_total") == 1,
                   what="first frame")  # fmt: skip
        svc.workers.workers[0].kill_for_test()
        for i in range(1, 4):
            svc.frame_received(frame("cam-1", cam.jpeg(i)))
            wait_until(svc.idle, what="idle")
        decoded = "offsite_video_frames_decoded_total"
        wait_until(lambda: (registry.get_sample_value(decoded) or 0) >= 3,
                   what="frames after the restart")  # fmt: skip
    finally:
        svc.stop()
    assert registry.get_sample_value("offsite_video_worker_restarts_total") == 1


def test_a_streaming_camera_is_pulled(pool: ConnectionPool, tmp_path: Path) -> None:
    import cv2

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 5, (640, 480))
    cam = SyntheticCamera(Scene(movers=1))
    for i in range(15):
        writer.write(cam.frame(i))
    writer.release()
    assert video.stat().st_size > 0
    settings = VideoSettings(
        cameras=[CameraSettings(id="rtsp-cam", url=f"file://{video}", fps=10)], workers=1
    )
    registry = CollectorRegistry()
    svc = VideoService(settings, pool, registry, tmp_path)
    svc.start()
    try:
        wait_until(lambda: (registry.get_sample_value("offsite_video_frames_decoded_total")
                            or 0) >= 5, what="pulled frames analysed")  # fmt: skip
        wait_until(lambda: svc.cameras.statuses()[0].state is CameraState.ONLINE, what="online")
    finally:
        svc.stop()
    assert (registry.get_sample_value("offsite_video_frames_received_total",
                                       {"source": "pull"}) or 0) >= 5  # fmt: skip
    with pool.connection() as conn:
        assert conn.execute(
            "SELECT kind, online FROM devices WHERE device_id = 'rtsp-cam'"
        ).fetchone() == ("camera", True)


class Recorder:
    def __init__(self) -> None:
        self.tasks: list[FrameTask] = []

    def submit(self, camera: CameraSettings, task: FrameTask) -> None:
        self.tasks.append(task)


@pytest.mark.parametrize(
    ("device_offset_s", "uses_device_time"),
    [(None, False), (-2.0, True), (-299.0, True), (-301.0, False), (3600.0, False)],
)
def test_device_time_is_used_unless_skewed(
    pool: ConnectionPool, device_offset_s: float | None, uses_device_time: bool
) -> None:
    from video.deadletters import DeadLetterWriter
    from video.intake import FrameIntake

    settings = VideoSettings(cameras=[{"id": "c"}])
    registry = CollectorRegistry()
    metrics = VideoMetrics(registry)
    recorder = Recorder()
    intake = FrameIntake(settings, CameraRegistry(settings, pool, metrics), recorder,
                         DeadLetterWriter(pool, metrics, 64, 10), metrics)  # fmt: skip
    now = datetime.now(UTC)
    device = None if device_offset_s is None else now + timedelta(seconds=device_offset_s)
    intake.frame_received(FrameMessage("c", b"\xff\xd8jpeg", device, now))
    (task,) = recorder.tasks
    expected = device if uses_device_time and device is not None else now
    assert task.time == expected.timestamp()
    skewed = registry.get_sample_value("offsite_video_clock_skew_total")
    assert skewed == (1 if device is not None and not uses_device_time else 0)
