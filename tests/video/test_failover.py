"""Two video workers (separate processes) share the cameras by lease; one is SIGKILLed.

Real Mosquitto, PostgreSQL and OpenCV. Small frames (320×240), motion only, four cameras at
5 fps: the whole test is light on a shared 2-core box. It measures and prints how long the
killed worker's cameras went unanalysed, and checks that no frame was analysed by both.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until
from video.synthetic import Scene, SyntheticCamera

CAMERAS = ["cam-a", "cam-b", "cam-c", "cam-d"]
FPS = 5
LEASE_S, HEARTBEAT_S = 3.0, 1.0
# A killed worker's lease runs out at most LEASE_S after its last renewal; the survivor
# takes it at its next heartbeat and analyses the next frame. Slack for a loaded box.
TAKEOVER_BOUND_S = LEASE_S + HEARTBEAT_S + 2.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    tmp: Path, name: str, db_url: str, broker: EmbeddedBroker, http_port: int = 0
) -> Path:
    config = {
        # `offsite run --role video`: only the video part, plus /healthz, /readyz, /metrics.
        "roles": ["video"],
        "http": {"port": http_port},
        "state_dir": str(tmp / name),
        "database": {"url": db_url, "pool_min": 1, "pool_max": 3},
        "mqtt": {"url": broker.url},
        "video": {
            "workers": 1,
            "fps": FPS,
            "cameras": [{"id": c, "detectors": ["motion"]} for c in CAMERAS],
            "motion_min_area": 40,
            "filters": {"motion": {"min_area": 100, "min_frames": 2}},
            # Nearly every frame with motion is reported, so detections count frames too.
            "update_interval_s": 0.1,
            "partition": "leases",
            "leases": {"lease_s": LEASE_S, "heartbeat_s": HEARTBEAT_S, "worker_id": name},
        },
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


class FramePublisher:
    """Every camera publishes a frame every 1/FPS s with a unique device time (ts, ms)."""

    def __init__(self, port: int) -> None:
        cam = SyntheticCamera(Scene(width=320, height=240, movers=1, seed=3))
        self.jpegs = [cam.jpeg(i, quality=70) for i in range(50)]
        self.pub = Publisher(port)
        self.sent: dict[str, list[int]] = {c: [] for c in CAMERAS}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        start, i = time.monotonic(), 0
        while not self._stop.is_set():
            ts = int(time.time() * 1000)
            for cam in CAMERAS:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.UserProperty = ("ts", str(ts))
                self.pub.publish(f"offsite/v1/devices/{cam}/frames",
                                 self.jpegs[i % len(self.jpegs)], properties=props)  # fmt: skip
                self.sent[cam].append(ts)
            i += 1
            self._stop.wait(max(0.0, start + i / FPS - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pub.close()


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("offsite_video_lease"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def holders(db: psycopg.Connection[Any]) -> dict[str, str | None]:
    rows = db.execute(
        "SELECT camera_id, holder FROM video_camera_leases WHERE expires_at > now()"
    ).fetchall()
    return dict(rows)


def cameras_detected(db: psycopg.Connection[Any], worker: str) -> int:
    row = db.execute(
        "SELECT count(DISTINCT camera_id) FROM video_detections WHERE worker_id = %s", (worker,)
    ).fetchone()
    return int(row[0]) if row else 0


def held_by(db: psycopg.Connection[Any], worker: str) -> set[str]:
    return {c for c, h in holders(db).items() if h == worker}


def start_worker(config: Path, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "offsite.cli", "--config", str(config), "run"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("OFFSITE_CONFIG", None)
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)


@pytest.mark.slow
def test_a_killed_workers_cameras_move_to_the_other_within_the_lease_time(
    tmp_path: Path, db_url: str, db: psycopg.Connection[Any], broker: EmbeddedBroker
) -> None:
    port_b = free_port()
    logs = {w: tmp_path / f"{w}.log" for w in ("wa", "wb")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    frames: FramePublisher | None = None
    try:
        procs["wa"] = start_worker(write_config(tmp_path, "wa", db_url, broker), logs["wa"])
        wait_until(lambda: held_by(db, "wa") == set(CAMERAS), timeout=30,
                   what="worker wa alone holding every camera")  # fmt: skip
        frames = FramePublisher(broker.port)
        frames.start()
        # wa analyses all four (motion needs 8 frames to learn the background)...
        wait_until(lambda: cameras_detected(db, "wa") == 4, timeout=30,
                   what="detections of all four cameras from wa")  # fmt: skip
        # ...then wb joins while frames flow: wa gives two cameras back, wb takes them.
        procs["wb"] = start_worker(write_config(tmp_path, "wb", db_url, broker, port_b),
                                   logs["wb"])  # fmt: skip
        wait_until(lambda: len(held_by(db, "wa")) == 2 and len(held_by(db, "wb")) == 2,
                   timeout=30, what="the cameras split two and two")  # fmt: skip
        moved = sorted(held_by(db, "wa"))
        wait_until(lambda: cameras_detected(db, "wb") == 2, timeout=30,
                   what="detections of the two cameras wb took")  # fmt: skip
        time.sleep(1.0)
        killed_at = time.time()
        procs["wa"].send_signal(signal.SIGKILL)
        procs["wa"].wait(10)
        wait_until(lambda: held_by(db, "wb") == set(CAMERAS), timeout=LEASE_S + 15,
                   what="worker wb taking the killed worker's cameras")  # fmt: skip
        time.sleep(3.0)  # wb analyses all four for a while, and flushes its counts
        metrics = scrape(port_b)
        frames.stop()
        procs["wb"].send_signal(signal.SIGTERM)  # clean stop: leases given back
        assert procs["wb"].wait(20) == 0
    except BaseException:
        for w, log in logs.items():
            if log.exists():
                print(f"--- {w} log ---\n{log.read_text(errors='replace')[-4000:]}")
        raise
    finally:
        if frames is not None:
            frames.stop()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(10)
    assert metrics["offsite_video_leases_held"] == 4
    assert metrics["offsite_video_leases_moved_total"] == 4  # two released, two expired
    assert metrics['offsite_video_leases_acquired_total{taken_from="expired"}'] == 2
    assert metrics["offsite_video_lease_workers"] == 1

    tenures = db.execute(
        "SELECT camera_id, epoch, holder, taken_from, end_reason, acquired_at, frames,"
        " first_frame_at, last_frame_at FROM video_lease_tenures ORDER BY camera_id, epoch"
    ).fetchall()
    by_camera: dict[str, list[tuple[Any, ...]]] = {}
    for row in tenures:
        by_camera.setdefault(row[0], []).append(row)
    counts = {
        (r[0], r[1]): (r[2], r[3])
        for r in db.execute(
            "SELECT camera_id, worker_id, count(*), count(DISTINCT time) FROM video_detections"
            " GROUP BY camera_id, worker_id"
        )
    }
    kill = datetime.fromtimestamp(killed_at, UTC)
    print(f"\nlease {LEASE_S:g} s, heartbeat {HEARTBEAT_S:g} s; wa SIGKILLed; "
          f"its cameras: {', '.join(moved)}")  # fmt: skip
    print(
        "camera  worker  taken_from  ended     frames  detections  frames from..to (s after kill)"
    )
    for cam in CAMERAS:
        for _, _epoch, holder, taken, ended, _acq, n, first, last in by_camera[cam]:
            span = (
                f"{(first - kill).total_seconds():+7.2f}..{(last - kill).total_seconds():+7.2f}"
                if first is not None
                else "      -"
            )
            dets = counts.get((cam, holder), (0, 0))[0]
            print(f"{cam}  {holder:6}  {taken:10}  {ended or '-':8}  {n:6}  {dets:10}  {span}")

    # Nothing is held after wb's clean stop.
    assert holders(db) == {}
    takeovers = []
    for cam in CAMERAS:
        rows = by_camera[cam]
        # No frame analysed by both: each holding's frames come strictly after the last one's.
        analysed = [r for r in rows if r[6] > 0]
        for before, after in itertools.pairwise(analysed):
            assert before[8] < after[7], f"{cam}: epochs {before[1]} and {after[1]} overlap"
        assert sum(r[6] for r in rows) <= len(frames.sent[cam])
        last = rows[-1]
        assert last[2] == "wb"
        assert last[6] > 0, f"{cam}: wb analysed no frame of it at the end"
        if cam in moved:
            assert last[3] == "expired", f"{cam} should have moved when wa's lease expired"
            assert rows[-2][2] == "wa"
            assert rows[-2][4] == "expired"
            takeovers.append(((last[5] - kill).total_seconds(), (last[7] - kill).total_seconds()))
        else:  # given back by wa, frames flowing, when wb joined
            assert last[3] == "released", f"{cam} should have moved when wb joined"
            assert rows[-2][2:5:2] == ("wa", "released")
            assert rows[-2][6] > 0, f"{cam}: wa analysed none of its frames before the move"
    # Detections: no frame (camera, device time) written by two workers.
    both = db.execute(
        "SELECT camera_id, time FROM video_detections GROUP BY camera_id, time"
        " HAVING count(DISTINCT worker_id) > 1"
    ).fetchall()
    assert both == []
    for cam in CAMERAS:  # each camera's detections: wa's first, then wb's, never mixed
        row = db.execute(
            "SELECT max(time) FILTER (WHERE worker_id = 'wa'),"
            " min(time) FILTER (WHERE worker_id = 'wb') FROM video_detections"
            " WHERE camera_id = %s",
            (cam,),
        ).fetchone()
        assert row is not None
        wa_last, wb_first = row
        assert wa_last < wb_first, f"{cam}: detections of wa after wb's"
        if cam in moved:
            assert wa_last < kill < wb_first
    lease_moved = max(t[0] for t in takeovers)
    first_frame = max(t[1] for t in takeovers)
    print(f"lease moved {lease_moved:.2f} s after the kill; wb analysed the moved cameras' "
          f"frames from {first_frame:.2f} s (bound {TAKEOVER_BOUND_S:g} s = lease "
          f"{LEASE_S:g} + heartbeat {HEARTBEAT_S:g} + 2 s slack)")  # fmt: skip
    assert lease_moved <= LEASE_S + HEARTBEAT_S + 1.0
    assert first_frame <= TAKEOVER_BOUND_S
