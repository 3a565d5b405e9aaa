"""A video worker on its own: `python -m video.role [--config FILE] [--metrics-port N]`.

Runs only the video part (camera leases, its own frame subscriptions, detectors, evidence,
fenced detections in `video_detections`), against the database and broker of the settings;
start as many as the cameras need, on any hosts. The full server's `offsite run` keeps
running everything in one process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from prometheus_client import CollectorRegistry, start_http_server

from offsite.db import create_pool
from offsite.migrations import prepare
from offsite.settings import ConfigError, Settings, load_settings
from supervise.worker import Supervisor
from video.service import VideoService

log = logging.getLogger("video.role")


def run(settings: Settings, metrics_port: int | None = None) -> None:
    db, mqtt = settings.database, settings.mqtt
    if not db.url or not mqtt.url:
        raise SystemExit(
            "a video worker needs database.url and mqtt.url (OFFSITE_DATABASE__URL, "
            "OFFSITE_MQTT__URL): it shares them with the other offsite processes"
        )
    video = settings.video
    if video.partition != "leases":
        # Several video workers only ever split the cameras by lease.
        video = video.model_copy(update={"partition": "leases"})
    prepare(db.url, settings, int(max(1, db.connect_timeout_s)))
    registry = CollectorRegistry()
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1", registry=registry)
    pool = create_pool(db, db.url, name="offsite-video")
    pool.open(wait=True, timeout=db.start_timeout_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    service = VideoService(
        video,
        pool,
        registry,
        settings.state_dir,
        supervisor=Supervisor(registry),
        frames_from=(mqtt.url, mqtt),
    )
    try:
        service.start()
        assert service.leases is not None
        log.warning("video worker %s running: %d cameras, lease %g s",
                    service.leases.worker_id, len(video.cameras), video.leases.lease_s)  # fmt: skip
        stop.wait()
    finally:
        service.stop()
        pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m video.role", description=__doc__)
    parser.add_argument("--config", help="settings file (YAML); else OFFSITE_CONFIG")
    parser.add_argument("--metrics-port", type=int, help="serve /metrics on 127.0.0.1:PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        raise SystemExit(str(err)) from err
    run(settings, args.metrics_port)


if __name__ == "__main__":
    main()
