"""Camera leases against a real PostgreSQL: fair share, hand-off, expiry, fencing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool
from pydantic import ValidationError

from ingest.models import FrameMessage
from ingest.settings import MqttSettings
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until
from tests.video.test_e2e import camera_settings, send_flame
from video.detections import DetectionLog, detections_after
from video.leases import CameraLeases, Lease
from video.metrics import VideoMetrics
from video.models import Box, Detection
from video.relay import DetectionRelay
from video.service import VideoService
from video.settings import (
    CameraSettings,
    DetectorName,
    FilterSettings,
    LeaseSettings,
    VideoSettings,
)
from video.synthetic import Scene, SyntheticCamera

CAMERAS = ["cam-1", "cam-2", "cam-3", "cam-4"]


@pytest.fixture
def pool(db_url: str) -> Iterator[ConnectionPool]:
    with ConnectionPool(db_url, min_size=1, max_size=4, open=True) as p:
        yield p


class Listener:
    def __init__(self) -> None:
        self.acquired: list[Lease] = []
        self.ended: list[str] = []

    def leases_acquired(self, leases: Any) -> None:
        self.acquired += leases

    def leases_ended(self, camera_ids: Any) -> None:
        self.ended += camera_ids


def worker(pool: ConnectionPool, name: str, lease_s: float = 2.0) -> tuple[CameraLeases, Any]:
    registry = CollectorRegistry()
    leases = CameraLeases(
        LeaseSettings(lease_s=lease_s, heartbeat_s=lease_s / 4, worker_id=name),
        CAMERAS,
        pool,
        VideoMetrics(registry),
        Listener(),
    )
    leases.register()
    return leases, registry


def cams(leases: CameraLeases) -> set[str]:
    return {lease.camera_id for lease in leases.held()}


def detection(camera: str) -> Detection:
    return Detection(camera, "motion", 0.9, Box(1, 2, 3, 4), None, datetime.now(UTC), "ep", 3)


def test_two_workers_split_the_cameras_and_a_release_moves_at_once(
    pool: ConnectionPool,
) -> None:
    a, reg_a = worker(pool, "wa")
    a.heartbeat()
    assert cams(a) == set(CAMERAS), "alone, a worker holds every camera"
    b, reg_b = worker(pool, "wb")
    b.heartbeat()
    assert cams(b) == set(), "nothing is free yet"
    a.heartbeat()  # sees two live workers: gives back the cameras above its share
    assert cams(a) == {"cam-1", "cam-2"}
    assert a.listener.ended == ["cam-3", "cam-4"]  # type: ignore[union-attr]
    b.heartbeat()
    assert cams(b) == {"cam-3", "cam-4"}
    assert reg_b.get_sample_value("offsite_video_leases_acquired_total",
                                  {"taken_from": "released"}) == 2  # fmt: skip
    assert reg_b.get_sample_value("offsite_video_leases_moved_total") == 2
    assert reg_a.get_sample_value("offsite_video_leases_held") == 2
    for w in (a, b):  # stable once fair
        w.heartbeat()
    assert cams(a) == {"cam-1", "cam-2"}
    assert cams(b) == {"cam-3", "cam-4"}
    a.stop()  # clean stop: every lease given back, no waiting for expiry
    b.heartbeat()
    assert cams(b) == set(CAMERAS)
    with pool.connection() as conn:
        ends = conn.execute(
            "SELECT camera_id, holder, end_reason FROM video_lease_tenures"
            " WHERE ended_at IS NOT NULL ORDER BY camera_id, epoch"
        ).fetchall()
    assert ends == [("cam-1", "wa", "released"), ("cam-2", "wa", "released"),
                    ("cam-3", "wa", "released"), ("cam-4", "wa", "released")]  # fmt: skip
    # Retention forgets ended holdings only (a's four); b's four current ones stay.
    time.sleep(0.01)
    assert b.apply_retention(timedelta(0)) == 4
    with pool.connection() as conn:
        kept = conn.execute("SELECT holder, ended_at FROM video_lease_tenures").fetchall()
    assert sorted(h for h, _ in kept) == ["wb"] * 4
    assert all(ended is None for _, ended in kept)


def test_a_dead_workers_cameras_move_after_the_lease_time_and_it_is_fenced(
    pool: ConnectionPool,
) -> None:
    a, reg_a = worker(pool, "wa", lease_s=1.0)
    a.heartbeat()
    old = {lease.camera_id: lease.epoch for lease in a.held()}
    log_a = DetectionLog(pool, a, a.metrics)
    assert log_a.record("cam-1", old["cam-1"], [detection("cam-1")])
    b, reg_b = worker(pool, "wb", lease_s=1.0)
    b.heartbeat()
    assert cams(b) == set(), "the lease has not expired"
    time.sleep(1.1)  # a stopped renewing (as if killed)
    assert a.epoch_of("cam-1") is None, "locally a lapsed lease is not trusted either"
    b.heartbeat()
    assert cams(b) == set(CAMERAS), "a's worker row expired too: b's share is every camera"
    assert reg_b.get_sample_value("offsite_video_leases_acquired_total",
                                  {"taken_from": "expired"}) == 4  # fmt: skip
    # a comes back (it was only stalled): its writes under the old epoch are refused...
    assert not log_a.record("cam-1", old["cam-1"], [detection("cam-1")])
    assert reg_a.get_sample_value("offsite_video_detections_fenced_total") == 1
    # ...and its next heartbeat finds the leases lost, without taking any from b.
    a.heartbeat()
    assert cams(a) == set()
    assert sorted(a.listener.ended) == CAMERAS  # type: ignore[union-attr]
    assert reg_a.get_sample_value("offsite_video_leases_ended_total", {"reason": "lost"}) == 4
    log_b = DetectionLog(pool, b, b.metrics)
    new = {lease.camera_id: lease.epoch for lease in b.held()}
    assert new["cam-1"] == old["cam-1"] + 1
    assert log_b.record("cam-1", new["cam-1"], [detection("cam-1")])
    with pool.connection() as conn:
        written = [(r[0], r[1]) for r in conn.execute(
            "SELECT worker_id, epoch FROM video_detections ORDER BY id")]  # fmt: skip
        assert written == [("wa", old["cam-1"]), ("wb", new["cam-1"])]
        assert [d.camera_id for _, d in detections_after(conn, 0)] == ["cam-1", "cam-1"]
        tenures = conn.execute(
            "SELECT holder, taken_from, end_reason FROM video_lease_tenures"
            " WHERE camera_id = 'cam-1' ORDER BY epoch"
        ).fetchall()
    assert tenures == [("wa", "new", "expired"), ("wb", "expired", None)]


def test_a_write_in_flight_holds_off_the_takeover(pool: ConnectionPool, db_url: str) -> None:
    """The fencing check share-locks the lease row until the write commits."""
    a, _ = worker(pool, "wa", lease_s=1.0)
    a.heartbeat()
    epoch = a.epoch_of("cam-1")
    assert epoch is not None
    time.sleep(1.1)
    with psycopg.connect(db_url) as conn, conn.transaction():
        # a's lease has lapsed, so its check fails even before anyone takes it.
        assert not a.check(conn, "cam-1", epoch)
    a.heartbeat()  # renew fails (expired), then a takes it again under a new epoch
    assert a.epoch_of("cam-1") == epoch + 1
    b, _ = worker(pool, "wb", lease_s=1.0)
    with psycopg.connect(db_url) as conn, conn.transaction():
        assert a.check(conn, "cam-1", epoch + 1)
        time.sleep(1.1)  # the lease expires while a's write is still open...
        b.heartbeat()  # ...but b cannot take the locked row; it takes the others
        assert "cam-1" not in cams(b)
    b.heartbeat()
    assert "cam-1" in cams(b)


def test_lease_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="at most half of lease_s"):
        LeaseSettings(lease_s=4, heartbeat_s=3)
    with pytest.raises(ValidationError, match="accept_unknown_cameras must be false"):
        VideoSettings(cameras=[CameraSettings(id="c")], partition="leases",
                      accept_unknown_cameras=True)  # fmt: skip


def test_a_single_leased_worker_holds_every_camera_and_takes_frames_from_its_own_subscriptions(
    pool: ConnectionPool, tmp_path: Path, broker: EmbeddedBroker
) -> None:
    settings = VideoSettings(
        cameras=[CameraSettings(id=c, detectors=[DetectorName.MOTION]) for c in CAMERAS[:2]],
        workers=1,
        motion_min_area=40,
        filters={"motion": FilterSettings(min_area=100, min_frames=2)},
        update_interval_s=0.1,
        partition="leases",
        leases=LeaseSettings(lease_s=2, heartbeat_s=0.5, worker_id="solo"),
    )
    registry = CollectorRegistry()
    sink = Sink()
    svc = VideoService(settings, pool, registry, tmp_path, detection_sink=sink,
                       frames_from=(broker.url, MqttSettings(url=broker.url)))  # fmt: skip
    cam = SyntheticCamera(Scene(width=320, height=240, movers=1, seed=3))
    pub = Publisher(broker.port)
    svc.start()
    try:
        assert svc.leases is not None
        assert cams(svc.leases) == set(CAMERAS[:2]), "alone, it holds every camera at start"
        wait_until(lambda: svc.subscriber is not None and svc.subscriber.connected,
                   what="the frame subscription")  # fmt: skip
        # A frame ingest hands over is not analysed: this worker has its own subscriptions.
        svc.frame_received(FrameMessage("cam-1", cam.jpeg(0), None, datetime.now(UTC)))
        assert registry.get_sample_value("offsite_video_frames_dropped_total",
                                         {"reason": "elsewhere"}) == 1  # fmt: skip
        for i in range(40):
            for c in CAMERAS[:2]:
                pub.publish(f"offsite/v1/devices/{c}/frames", cam.jpeg(i, quality=70), qos=0)
            time.sleep(1 / 5)
            if {d.camera_id for d in sink.seen} == set(CAMERAS[:2]):
                break
        wait_until(lambda: {d.camera_id for d in sink.seen} == set(CAMERAS[:2]),
                   what="detections of both cameras")  # fmt: skip
        wait_until(svc.idle, what="idle")
    finally:
        pub.close()
        svc.stop()
    with pool.connection() as conn:
        written = conn.execute("SELECT count(*), count(DISTINCT worker_id) FROM video_detections")
        assert written.fetchone() == (len(sink.seen), 1), "every detection written, fenced"
        free = conn.execute("SELECT count(*) FROM video_camera_leases WHERE holder IS NULL")
        assert free.fetchone() == (2,), "a clean stop gives every lease back"


class Sink:
    def __init__(self) -> None:
        self.seen: list[Detection] = []

    def detections_observed(self, detections: Any) -> None:
        self.seen.extend(detections)


def test_the_relay_hands_every_workers_detections_to_the_rules_once_in_order(
    pool: ConnectionPool,
) -> None:
    a, _ = worker(pool, "wa")
    a.heartbeat()
    b, _ = worker(pool, "wb")
    a.heartbeat()
    b.heartbeat()
    written = []
    for leases in (a, b, a):
        for lease in leases.held():
            d = detection(lease.camera_id)
            assert DetectionLog(pool, leases, leases.metrics).record(lease.camera_id,
                                                                     lease.epoch, [d])  # fmt: skip
            written.append(d)
    sink = Sink()
    relay = DetectionRelay(pool, sink, batch=4)
    assert relay.relay_once() == 4
    assert relay.relay_once() == 2
    assert relay.relay_once() == 0
    assert sink.seen == written
    # The watermark is durable: a relay started afresh (an engine taking over) goes on from it.
    assert DetectionRelay(pool, Sink()).relay_once() == 0


@pytest.mark.slow
def test_offsite_run_with_camera_leases_turns_flame_frames_into_a_fire_clue(
    make_settings: Callable[..., Any], broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    leases = {"lease_s": 4, "heartbeat_s": 1, "worker_id": "solo"}
    settings = camera_settings(make_settings, db, ["fire"], partition="leases", leases=leases)
    with OffsiteApp(settings) as app:
        wait_until(lambda: app.readiness()["broker"], what="broker connection")
        assert app.api_context is not None
        video = app.api_context.get(VideoService)
        assert video.leases is not None
        assert [lease.camera_id for lease in video.leases.held()] == ["cam-1"]
        wait_until(lambda: video.subscriber is not None and video.subscriber.connected,
                   what="the video worker's own subscription")  # fmt: skip
        pub = Publisher(broker.port)
        try:
            send_flame(pub)
            row = wait_until(
                lambda: db.execute(
                    "SELECT device_ids, evidence_ids FROM clues WHERE rule_id = 'site-fire'"
                ).fetchone(),
                timeout=30,
                what="the site-fire clue",
            )
        finally:
            pub.close()
    assert row[0] == ["cam-1"]
    assert row[1], "the clue carries no evidence id"
    # Ingest received the frames too (its # subscription) and left them to the video worker;
    # the detections went through the fenced table and the relay.
    fire = db.execute(
        "SELECT count(*), min(worker_id), max(worker_id) FROM video_detections WHERE label = 'fire'"
    ).fetchone()
    assert fire is not None
    assert fire[0] > 0
    assert fire[1:] == ("solo", "solo")
    mark = db.execute("SELECT last_id FROM video_detection_watermark").fetchone()
    last = db.execute("SELECT max(id) FROM video_detections").fetchone()
    assert mark is not None
    assert last is not None
    assert mark[0] == last[0], "the relay handed every detection to the rules"
