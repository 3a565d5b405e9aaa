"""Video benchmark: frames/s per core for each stage, then 8 cameras at 5 fps on this machine.

    python bench/video.py [--seconds 30] [--quick]

Part 1 runs one camera's pipeline in this process on one core (OpenCV limited to one
thread) over synthetic 640x480 JPEG frames: decode+motion, motion+fire+smoke+tamper, and the
person detector (HOG + full-body Haar) both motion-gated and on the whole frame. Medians of
three runs. Part 2 starts the whole server (`offsite run`, embedded PostgreSQL, Mosquitto,
rules, video with 2 worker processes) and publishes 8 cameras x 5 fps of synthetic JPEGs over
MQTT for --seconds, then reads the server's metrics: frames received, decoded, dropped by
reason, and the machine's CPU use. Target: < 5% of frames dropped for lack of capacity.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import infrastructure, offsite_server, scrape, start_publisher
from video.frames import FrameTask
from video.pipeline import CameraPipeline
from video.settings import CameraSettings, DetectorName, VideoSettings
from video.synthetic import Scene, SyntheticCamera

W, H = 640, 480


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_stage(frames: list[bytes], detectors: list[DetectorName]) -> float:
    pipe = CameraPipeline(CameraSettings(id="b", detectors=detectors), VideoSettings())
    for i in range(10):  # warm-up: background model, caches
        pipe.process(FrameTask("b", i / 5, 0.0, frames[i]))
    start = time.perf_counter()
    for i, f in enumerate(frames):
        pipe.process(FrameTask("b", 10 + i / 5, 0.0, f))
    return len(frames) / (time.perf_counter() - start)


def person_full_frame(frames: list[bytes]) -> float:
    from video.models import Box
    from video.person import PersonDetector

    det = PersonDetector()
    images = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    start = time.perf_counter()
    for img in images:
        det.detect(img, [Box(0, 0, W, H)])
    return len(images) / (time.perf_counter() - start)


def per_core(n: int) -> None:
    cam = SyntheticCamera(Scene(movers=2, flame=True, smoke=True, seed=3))
    frames = [cam.jpeg(i) for i in range(n + 10)]
    decode_only = []
    for _ in range(3):
        t = time.perf_counter()
        for f in frames:
            cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR)
        decode_only.append(len(frames) / (time.perf_counter() - t))
    print(
        f"JPEG decode alone ({len(frames[0]) // 1024} KiB frames): "
        f"{statistics.median(decode_only):,.0f} frames/s"
    )
    stages = {
        "decode + motion": [DetectorName.MOTION],
        "decode + motion + fire + smoke + tamper": [
            DetectorName.MOTION,
            DetectorName.FIRE,
            DetectorName.SMOKE,
            DetectorName.TAMPER,
        ],
        "all default detectors (person on motion, at most every 0.4 s)": [
            DetectorName.MOTION,
            DetectorName.FIRE,
            DetectorName.SMOKE,
            DetectorName.TAMPER,
            DetectorName.PERSON,
        ],
        "decode + person only (on motion, at most every 0.4 s)": [DetectorName.PERSON],
    }
    for name, dets in stages.items():
        rates = [run_stage(frames, dets) for _ in range(3)]
        print(f"{name}: {statistics.median(rates):,.1f} frames/s per core")
    rates = [person_full_frame(frames[: max(20, n // 5)]) for _ in range(3)]
    print(
        f"person detector on the whole frame (ungated): {statistics.median(rates):,.1f} "
        "frames/s per core"
    )


def scenes() -> list[Scene]:
    return [
        Scene(movers=2, seed=11),
        Scene(movers=1, flame=True, seed=12),
        Scene(movers=0, smoke=True, seed=13),
        Scene(movers=3, seed=14),
        Scene(movers=1, cover_after_s=20, seed=15),
        Scene(movers=0, seed=16),
        Scene(movers=2, flame=True, flame_from_s=10, seed=17),
        Scene(movers=1, seed=18),
    ]


def sustained(seconds: float, work: Path) -> None:
    cams = [f"bench-cam-{i}" for i in range(8)]
    fps = 5
    per_cam = int(seconds * fps)
    print(f"rendering {per_cam * len(cams)} frames ...", flush=True)
    cameras = [SyntheticCamera(s) for s in scenes()]
    items = []
    for i in range(per_cam):
        for cam_id, cam in zip(cams, cameras, strict=True):
            items.append((f"offsite/v1/devices/{cam_id}/frames", cam.jpeg(i)))
    size = statistics.median(len(p) for _, p in items)

    config = work / "offsite.yaml"
    config.write_text(
        yaml.safe_dump({"video": {"workers": 2, "cameras": [{"id": c} for c in cams]}})
    )
    with (
        infrastructure(work) as infra,
        offsite_server(work, infra, "offsite-bench-video", {"OFFSITE_CONFIG": str(config)}) as srv,
    ):
        before = scrape(srv.metrics_url)
        busy0, total0 = cpu_times()
        proc, q = start_publisher(infra.broker.port, items, rate=fps * len(cams), qos=1)
        sent, acked, took = q.get(timeout=seconds * 3 + 120)
        proc.join(10)
        time.sleep(3)  # let the last frames through the workers
        busy1, total1 = cpu_times()
        after = scrape(srv.metrics_url)

    def delta(key: str) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    received = delta('offsite_video_frames_received_total{source="mqtt"}')
    decoded = delta("offsite_video_frames_decoded_total")
    drops = {
        r: delta(f'offsite_video_frames_dropped_total{{reason="{r}"}}')
        for r in ("queue_full", "worker_lost", "rate", "stopping")
    }
    capacity_drops = drops["queue_full"] + drops["worker_lost"]
    share = capacity_drops / received if received else float("nan")
    print(
        f"published {sent} frames ({size / 1024:.0f} KiB median) in {took:.1f}s "
        f"= {sent / took:.1f} frames/s; broker acked {acked}"
    )
    print(f"server received {received:.0f}, decoded and analysed {decoded:.0f}")
    print("dropped: " + ", ".join(f"{k} {v:.0f}" for k, v in drops.items()))
    print(
        f"machine CPU busy during the run: {100 * (busy1 - busy0) / (total1 - total0):.0f}% "
        f"of {os.cpu_count()} cores (server, broker, database and publisher together)"
    )
    for stage in ("decode", "motion", "fire", "smoke", "tamper", "person", "evidence"):
        n = delta(f'offsite_video_detection_seconds_count{{detector="{stage}"}}')
        s = delta(f'offsite_video_detection_seconds_sum{{detector="{stage}"}}')
        if n:
            print(f"  {stage}: {n:.0f} runs, mean {1000 * s / n:.1f} ms")
    episodes = {
        k.split('"')[1]: v - before.get(k, 0.0)
        for k, v in after.items()
        if k.startswith("offsite_video_episodes_total{")
    }
    print(f"episodes started: {episodes}")
    verdict = "yes" if share < 0.05 else "no"
    print(
        f"8 cameras x 5 fps sustained on 2 cores with < 5% dropped: {verdict} "
        f"({100 * share:.2f}% dropped for capacity)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the 8-camera run")
    ap.add_argument("--frames", type=int, default=150, help="frames per per-core stage")
    ap.add_argument("--quick", action="store_true", help="a small run to check the script")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.frames = 8.0, 40
    cv2.setNumThreads(1)
    print("== per core, 640x480, one camera, OpenCV on one thread")
    per_core(args.frames)
    print("\n== 8 cameras x 5 fps through the whole server (2 worker processes)")
    work = Path(tempfile.mkdtemp(prefix="offsite-bench-video-"))
    try:
        sustained(args.seconds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
