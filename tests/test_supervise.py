"""Supervised workers: a fault in a worker is logged, counted and restarted; /readyz tells."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.outbox import OutboxDelivery
from alerts.service import AlertService
from ingest.writer import BatchWriter
from offsite.app import OffsiteApp
from offsite.embedded import EmbeddedBroker
from rules.service import RuleService
from supervise import Supervisor
from tests.alerts.support import Receiver, emb_webhook, running_receiver, tank_farm
from tests.alerts.test_e2e import RULE
from tests.helpers import Publisher, running_offsite, wait_until
from video.frames import FrameTask
from video.metrics import VideoMetrics
from video.settings import CameraSettings, VideoSettings
from video.synthetic import Scene, synthetic_frames
from video.workers import Worker, WorkerPool


def _once(fault: Exception) -> Callable[[], None]:
    """Raise `fault` the first time only."""
    fired: list[bool] = []

    def maybe() -> None:
        if not fired:
            fired.append(True)
            raise fault

    return maybe


FailOnce = Callable[[type, str, Exception], None]


@pytest.fixture
def fail_once(monkeypatch: pytest.MonkeyPatch) -> FailOnce:
    """Patch `cls.name` (a method) to raise `fault` the first time it is called, then to run
    as it was."""

    def patch(cls: type, name: str, fault: Exception) -> None:
        boom = _once(fault)
        real = getattr(cls, name)

        def flaky(self: Any, *args: Any) -> Any:
            boom()
            return real(self, *args)

        monkeypatch.setattr(cls, name, flaky)

    return patch


# -- the mechanism ------------------------------------------------------------------------


def test_a_failing_step_is_counted_restarted_and_marked_down_meanwhile() -> None:
    registry = CollectorRegistry()
    sup = Supervisor(registry)
    turns: list[int] = []
    stop = threading.Event()
    boom = _once(RuntimeError("bug"))
    gate = threading.Event()

    def step() -> bool:
        boom()
        turns.append(1)
        gate.wait(5)  # held, so the test sees the state after the restart
        return not stop.is_set()

    worker = sup.start("w", step, restart_min_s=0.3)
    wait_until(lambda: sup.health()[0].errors == 1, what="the error counted")
    assert sup.health()[0].healthy is False
    assert "RuntimeError: bug" in sup.health()[0].reason
    assert registry.get_sample_value("offsite_worker_up", {"worker": "w"}) == 0.0
    wait_until(lambda: turns, what="the restart")
    assert sup.health()[0].restarts == 1
    assert registry.get_sample_value("offsite_worker_restarts_total", {"worker": "w"}) == 1.0
    stop.set()
    gate.set()
    assert worker.join(5)
    assert registry.get_sample_value("offsite_worker_errors_total", {"worker": "w"}) == 1.0
    progress = registry.get_sample_value(
        "offsite_worker_last_progress_timestamp_seconds", {"worker": "w"}
    )
    assert progress is not None
    assert progress > time.time() - 60


def test_a_step_that_does_not_return_is_reported_stuck() -> None:
    sup = Supervisor(CollectorRegistry())
    release = threading.Event()

    def step() -> bool:
        release.wait(10)
        return False

    worker = sup.start("blocked", step, stall_s=0.3)
    wait_until(lambda: sup.health()[0].stalled, what="the stall")
    assert sup.health()[0].reason == "stuck: no progress"
    release.set()
    assert worker.join(5)


def test_restarts_back_off_so_a_worker_failing_every_turn_does_not_spin() -> None:
    sup = Supervisor(CollectorRegistry())
    calls: list[float] = []

    def step() -> bool:
        calls.append(time.monotonic())
        raise ValueError("always")

    worker = sup.start("bad", step, restart_min_s=0.1, restart_max_s=0.4)
    wait_until(lambda: len(calls) >= 4, what="four attempts")
    assert worker.join(2)
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[1] >= 0.19
    assert gaps[2] >= 0.39


# -- the workers of offsite run ---------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from running_receiver()


@pytest.fixture
def settings(
    make_settings: Callable[..., Any],
    db: psycopg.Connection[Any],
    tmp_path: Path,
    receiver: Receiver,
) -> Any:
    rules = tank_farm(db, tmp_path, RULE)
    route = emb_webhook(receiver)
    return make_settings(
        rules={"directory": str(rules)},
        alerts={"routes": [route], "outbox_poll_s": 0.2, "tick_interval_s": 0.2},
    )


def _publish(broker: EmbeddedBroker, device: str, value: float, ts_ms: int) -> None:
    pub = Publisher(broker.port)
    try:
        pub.publish(f"offsite/v1/devices/{device}/telemetry",
                    json.dumps({"ts": ts_ms, "values": {"lel": value}}))  # fmt: skip
        pub.wait_acked(1)
    finally:
        pub.close()


def _stored(db: psycopg.Connection[Any], device: str) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,)).fetchone()
    assert row is not None
    return int(row[0])


def _readyz(app: OffsiteApp) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{app.http_port}/readyz", timeout=10)


def _restarts(app: OffsiteApp, worker: str) -> float:
    value = app.registry.get_sample_value("offsite_worker_restarts_total", {"worker": worker})
    return value or 0.0


def test_a_sink_raising_once_does_not_stop_the_writer(
    settings: Any, broker: EmbeddedBroker, db: psycopg.Connection[Any], fail_once: FailOnce
) -> None:
    fail_once(RuleService, "readings_committed", RuntimeError("sink bug"))
    with running_offsite(settings) as app:
        now = int(time.time() * 1000)
        _publish(broker, "meter-1", 1.0, now)
        wait_until(lambda: _stored(db, "meter-1") == 1, what="the first reading")
        _publish(broker, "meter-1", 2.0, now + 1000)
        wait_until(lambda: _stored(db, "meter-1") == 2, what="the reading after the fault")
        assert app.registry.get_sample_value("offsite_ingest_sink_errors_total") == 1.0
        r = _readyz(app)
        assert r.status_code == 200, r.text
        assert r.json()["checks"]["worker:ingest-writer"] is True


def test_a_writer_fault_is_restarted_and_the_batch_still_stored(
    settings: Any, broker: EmbeddedBroker, db: psycopg.Connection[Any], fail_once: FailOnce
) -> None:
    fail_once(BatchWriter, "write", RuntimeError("writer bug"))
    with running_offsite(settings) as app:
        _publish(broker, "meter-2", 1.0, int(time.time() * 1000))
        wait_until(lambda: _stored(db, "meter-2") == 1, what="the batch after the restart")
        assert _restarts(app, "ingest-writer") == 1.0


def test_rules_alerts_and_outbox_faults_are_restarted_and_the_alert_still_sent(
    settings: Any, broker: EmbeddedBroker, receiver: Receiver, fail_once: FailOnce
) -> None:
    fail_once(RuleService, "_commit", RuntimeError("rules bug"))
    fail_once(AlertService, "sweep", RuntimeError("alerts bug"))
    fail_once(OutboxDelivery, "deliver_due", RuntimeError("outbox bug"))
    with running_offsite(settings) as app:
        wait_until(lambda: _restarts(app, "alerts-outbox") and _restarts(app, "alerts-worker"),
                   what="alerts and outbox restarted")  # fmt: skip
        _publish(broker, "gas-1", 62.0, int(time.time() * 1000))
        wait_until(receiver.bodies, 30, what="the webhook despite the faults")
        assert _restarts(app, "rules-engine") == 1.0
        wait_until(lambda: _readyz(app).status_code == 200, what="ready again")
    assert len(receiver.bodies()) == 1


def test_readyz_names_a_dead_worker_and_recovers(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = threading.Event()
    broken.set()
    real = AlertService.tick

    def tick(self: AlertService) -> None:
        if broken.is_set():
            raise RuntimeError("tick bug")
        real(self)

    monkeypatch.setattr(AlertService, "tick", tick)
    with OffsiteApp(settings) as app:
        wait_until(lambda: _readyz(app).status_code == 503, what="not ready")
        r = _readyz(app)
        assert r.json()["checks"]["worker:alerts-ticker"] is False
        assert r.json()["checks"]["worker:alerts-outbox"] is True
        assert app.registry.get_sample_value("offsite_worker_up", {"worker": "alerts-ticker"}) == 0
        broken.clear()
        wait_until(lambda: _readyz(app).status_code == 200, 40, what="ready after the fix")
        assert _restarts(app, "alerts-ticker") >= 1


def test_a_video_feeder_fault_is_restarted_and_frames_flow_again(fail_once: FailOnce) -> None:
    registry = CollectorRegistry()
    sup = Supervisor(registry)
    settings = VideoSettings(workers=1)
    camera = CameraSettings(id="cam-1", detectors=["motion"])
    results: list[FrameTask] = []
    fail_once(Worker, "_next", RuntimeError("feeder bug"))
    pool = WorkerPool(
        settings, VideoMetrics(CollectorRegistry()), lambda t, r: results.append(t),
        supervisor=sup,
    )  # fmt: skip
    try:
        frames = synthetic_frames(Scene(movers=1), count=3)
        for f in frames:
            now = time.time()
            pool.submit(camera, FrameTask("cam-1", now, now, f.jpeg))
        wait_until(lambda: len(results) == 3, 60, what="frames after the restart")
        assert (
            registry.get_sample_value("offsite_worker_restarts_total", {"worker": "video-worker-0"})
            == 1.0
        )
        assert all(h.healthy for h in sup.health())
    finally:
        pool.stop()


def test_the_subject_directory_loops_are_supervised_and_restarted(db_url: str) -> None:
    """An error escaping the directory's refresh loop restarts it; it is never silently gone."""
    from psycopg_pool import ConnectionPool

    from subjects.directory import SubjectDirectory
    from subjects.metrics import SubjectsMetrics

    sup = Supervisor(CollectorRegistry())
    with ConnectionPool(db_url, min_size=1, max_size=2, open=True) as pool:
        d = SubjectDirectory(pool, SubjectsMetrics(CollectorRegistry()), supervisor=sup)
        real_wait = d._wake.wait
        fault = _once(RuntimeError("injected directory fault"))

        def failing_wait(timeout: float | None = None) -> bool:
            fault()
            return real_wait(timeout)

        d._wake.wait = failing_wait  # type: ignore[method-assign]
        d.start()
        try:
            names = {h.name for h in sup.health()}
            assert {"subjects-refresh", "subjects-listen"} <= names

            def refresh_restarted() -> bool:
                h = next(h for h in sup.health() if h.name == "subjects-refresh")
                return h.restarts == 1 and h.healthy

            wait_until(refresh_restarted, timeout=15, what="the refresh loop restarted")
            h = next(h for h in sup.health() if h.name == "subjects-refresh")
            assert h.errors == 1
            assert "injected directory fault" in h.last_error
        finally:
            d.stop()
        assert {h.name for h in sup.health()} & {"subjects-refresh", "subjects-listen"} == set()
