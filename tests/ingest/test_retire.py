"""`offsite ingest retire`: a worker gone for good stops holding a share of the stream.

Mosquitto deals a disconnected shared-group member its share into its session's queue. Here
worker 2 of a group left without coming back; worker 1 stores only its own share. The
retire command, run as a user would, stores what the broker kept for worker 2 and has the
broker forget its session: every reading is then stored once, and what is published
afterwards all reaches worker 1. Real Mosquitto (the project's config) and PostgreSQL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry

from ingest.topics import telemetry_topic
from ingest.worker_process import worker_service
from offsite.app import ingest_worker_specs
from offsite.embedded import EmbeddedBroker
from offsite.settings import load_settings
from tests.helpers import Publisher, wait_until
from tests.ingest.test_pipeline import now_ms


def _stored(db: psycopg.Connection[Any], prefix: str) -> tuple[int, int]:
    row = db.execute(
        "SELECT count(*), count(DISTINCT (device_id, metric, time)) FROM readings"
        " WHERE device_id LIKE %s",
        (prefix + "%",),
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_retiring_a_gone_worker_stores_its_share_and_frees_the_group(
    tmp_path: Path, db_url: str, broker: EmbeddedBroker, db: psycopg.Connection[Any]
) -> None:
    cid = f"ret-{os.getpid()}-{time.monotonic_ns() % 100000}"
    config = tmp_path / "offsite.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"),
        "database": {"url": db_url},
        "mqtt": {"url": broker.url, "client_id": cid, "shared_group": cid},
        "video": {"enabled": False},
        "hj212": {"enabled": False},
    }), encoding="utf-8")  # fmt: skip
    settings = load_settings(config_file=str(config))
    [spec1, spec2] = ingest_worker_specs(settings, [1, 2])
    assert spec2.mqtt.client_id == f"{cid}-2"

    # Worker 2 joined the group once and is gone: its session stays, with its share.
    gone = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=spec2.mqtt.client_id,
                       protocol=mqtt.MQTTv5)  # fmt: skip
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    subscribed = threading.Event()
    gone.on_subscribe = lambda *a: subscribed.set()
    gone.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    gone.loop_start()
    gone.subscribe(f"$share/{cid}/offsite/v1/devices/#", qos=1)
    assert subscribed.wait(10)
    gone.disconnect()
    gone.loop_stop()

    worker1 = worker_service(spec1, CollectorRegistry())
    worker1.start()
    pub = Publisher(broker.port)
    prefix = f"{cid}-dev"
    try:
        wait_until(lambda: worker1.broker_connected, timeout=20, what="worker 1 connected")
        # Its SUBSCRIBE follows the CONNACK: probe until worker 1 stores one (a probe dealt to
        # worker 2 waits in its session, as the rest will; the retire stores it too).
        t0 = now_ms() - 60_000
        probe = f"{cid}-probe"

        probes: list[int] = []

        def probed() -> bool:
            probes.append(
                pub.publish(telemetry_topic(probe), f'{{"ts": {now_ms()}, "values": {{"v": 1}}}}')
            )
            return _stored(db, probe)[0] > 0

        wait_until(probed, timeout=20, interval=0.3, what="worker 1 subscribed")
        pub.wait_acked(len(probes))
        n = 400
        for i in range(n):
            device = f"{prefix}{i % 20}"
            pub.publish(telemetry_topic(device), f'{{"ts": {t0 + i}, "values": {{"v": {i}}}}}')
        pub.wait_acked(len(probes) + n)
        # Worker 1 stores its share and no more; the rest waits in worker 2's session.
        settled: list[int] = []

        def steady() -> bool:
            settled.append(_stored(db, prefix)[0])
            return len(settled) > 8 and len(set(settled[-8:])) == 1 and settled[-1] > 0

        wait_until(steady, timeout=30, interval=0.25, what="worker 1's share stored")
        assert 0 < settled[-1] < n, f"worker 1 stored {settled[-1]} of {n}"

        run = subprocess.run(
            [sys.executable, "-m", "offsite.cli", "--config", str(config),
             "ingest", "retire", "--worker", "2", "--quiet", "2"],
            check=False, capture_output=True, text=True, timeout=120,
            env={**os.environ, "OFFSITE_CONFIG": str(config)},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        assert "the broker forgot the session" in run.stdout, run.stdout
        assert _stored(db, prefix) == (n, n), "every reading stored once after the retire"

        # Worker 2 is out of the group: everything published now reaches worker 1.
        for i in range(n, n + 200):
            device = f"{prefix}{i % 20}"
            pub.publish(telemetry_topic(device), f'{{"ts": {t0 + i}, "values": {{"v": {i}}}}}')
        pub.wait_acked(len(probes) + n + 200)
        wait_until(lambda: _stored(db, prefix) == (n + 200, n + 200), timeout=30,
                   what="all of the later stream stored by worker 1")  # fmt: skip
    finally:
        pub.close()
        worker1.stop()
