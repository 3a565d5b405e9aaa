"""A broker restart under load loses no acknowledged reading (failover/repair.py).

Mosquitto 2.0 restores a persistent shared subscription after its own restart only when a
member reconnects: what devices publish before that reaches no ingest process, though they
got their PUBACKs. Here ingest reconnects 3 s after a restart, devices and the engine after
1 s, and the devices keep publishing throughout. With the repair off, acknowledged readings
are missing (the gap is real on this broker); with it on, the engine's unshared stream
stores what ingest missed during its window, and every acknowledged reading is stored once.
Real Mosquitto (the project's config) and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from failover.feed import EngineFeed
from failover.metrics import EngineMetrics
from failover.repair import GapRepair
from failover.settings import EngineSettings
from ingest.models import DeviceStatus, Reading
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.worker_process import WorkerSpec, worker_service
from ingest.writer import store_missing
from offsite.embedded import EmbeddedBroker
from tests.helpers import KeyedPublisher, wait_until

pytestmark = [
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
    pytest.mark.slow,
]

DEVICES = 5
RATE_HZ = 10  # per device
STREAM_S = 10.0
RESTART_AT = 3.0


class Rules:
    """Stands in for the rule service: acknowledges what it is handed."""

    def evaluate(self, readings: Sequence[Reading], done: Callable[[], None]) -> None:
        done()

    def status_changed(self, status: DeviceStatus) -> None:
        pass


class Devices(KeyedPublisher):
    """QoS 1 publishers through the restart; remembers what the broker acknowledged."""

    def __init__(self, port: int, prefix: str) -> None:
        super().__init__(port, f"{prefix}-pub", inflight=500, reconnect_max_s=1)
        self.prefix = prefix

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            ts = int(time.time() * 1000)
            for n in range(DEVICES):
                device = f"{self.prefix}-{n}"
                payload = json.dumps({"ts": ts, "values": {"v": n}})
                self.publish(f"offsite/v1/devices/{device}/telemetry", payload, (device, ts))
            time.sleep(1 / RATE_HZ)


def _stored(db: psycopg.Connection[Any], prefix: str) -> list[tuple[str, int]]:
    rows = db.execute(
        "SELECT device_id, (extract(epoch FROM time) * 1000)::bigint FROM readings"
        " WHERE device_id LIKE %s",
        (prefix + "-%",),
    ).fetchall()
    return [(d, int(t)) for d, t in rows]


@pytest.mark.parametrize("window_s", [0.0, 5.0], ids=["repair-off", "repair-on"])
def test_readings_published_in_a_broker_restarts_gap_are_stored_by_the_engine(
    own_broker: EmbeddedBroker, db_url: str, db: psycopg.Connection[Any], window_s: float
) -> None:
    prefix = f"gap{uuid.uuid4().hex[:6]}"
    # Ingest as a worker of a shared group, slow to reconnect: the gap is ~2 s wide.
    ingest_mqtt = MqttSettings(
        url=own_broker.url, client_id=f"{prefix}-ingest-1", shared_group=prefix,
        reconnect_min_s=3, reconnect_max_s=3,
    )  # fmt: skip
    spec = WorkerSpec(1, ingest_mqtt, IngestSettings(), StorageSettings(), own_broker.url,
                      db_url, frames_elsewhere=True, log_level="INFO")  # fmt: skip
    ingest = worker_service(spec, CollectorRegistry())
    metrics = EngineMetrics(CollectorRegistry())
    store = psycopg.connect(db_url)

    def store_rows(rows: Sequence[Reading]) -> int:
        return store_missing(store, rows)

    feed = EngineFeed(
        EngineSettings(client_id=f"{prefix}-engine"),
        MqttSettings(url=own_broker.url, reconnect_min_s=1, reconnect_max_s=1),
        IngestSettings(),
        StorageSettings(),
        own_broker.url,
        Rules(),
        metrics,
        GapRepair(store_rows, window_s, metrics),
    )
    ingest.start()
    feed.start()
    devices: Devices | None = None
    try:
        wait_until(lambda: ingest.broker_connected and feed.connected, timeout=20,
                   what="ingest and the engine connected")  # fmt: skip
        assert feed.wait_subscribed(20), "no SUBACK for the engine's subscription"
        # The SUBSCRIBEs follow the CONNACKs; and the window of the engine's first connect
        # closes, so what the repair stores is what the restart's window caught.
        time.sleep(window_s + 1.0)
        devices = Devices(own_broker.port, prefix)
        stream = threading.Thread(target=devices.run, args=(STREAM_S,), daemon=True)
        stream.start()
        time.sleep(RESTART_AT)
        own_broker.stop()  # SIGTERM: Mosquitto writes its sessions to disk
        own_broker.start()
        stream.join(STREAM_S + 10)
        wait_until(lambda: not devices.sent, timeout=30, what="every publish acknowledged")
        acked = set(devices.acked)
        assert len(acked) > DEVICES * RATE_HZ * (STREAM_S - 3)

        def lost() -> set[tuple[str, int]]:
            return acked - set(_stored(db, prefix))

        if window_s == 0:
            time.sleep(3.0)  # ingest has long committed what it got
            missing = lost()
            print(f"\nrepair off: acknowledged {len(acked)}, not stored {len(missing)}")
            assert missing, "no gap: Mosquitto now restores shared subscriptions at once"
            return
        try:
            wait_until(lambda: not lost(), timeout=30, what="every acknowledged reading stored")
        finally:
            print(f"\nrepair on: acknowledged {len(acked)}, not stored {len(lost())}, stored"
                  f" by the engine {metrics.gap_stored._value.get():.0f}")  # fmt: skip
        rows = _stored(db, prefix)
        assert len(rows) == len(set(rows)), "a reading stored twice"
        # What ingest missed, not the whole stream: the window opened at the reconnect.
        assert 0 < metrics.gap_stored._value.get() < len(acked)
    finally:
        if devices is not None:
            devices.close()
        feed.stop()
        ingest.stop()
        store.close()
