"""An HJ 212 packet is acknowledged only once the broker has the relay of its readings.

A real Mosquitto and PostgreSQL: the writer commits a relay envelope while the broker is
down, and its acknowledgement waits until the broker is back and has taken the relay. The
same packet again (a redelivery after a crash between commit and relay) is relayed on the
`resent` topic, which the engine checks against what it has evaluated.
"""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry

from ingest.metrics import IngestMetrics
from ingest.models import Reading
from ingest.relay import EngineRelay, PublishTracker, RelayConnection
from ingest.settings import IngestSettings, MqttSettings
from ingest.topics import RELAY_SUBSCRIPTION, relay_topic
from ingest.writer import Envelope, WriterLoop
from offsite.embedded import EmbeddedBroker
from tests.helpers import wait_until

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")

MN = "88888880000009"


def test_the_tracker_runs_a_group_once_every_publish_is_acknowledged() -> None:
    tracker = PublishTracker()
    done: list[str] = []
    tracker.on_publish(None, None, 7, None, None)  # the PUBACK came before the id was claimed
    tracker.track([5, 6, 7], lambda: done.append("a"))
    tracker.on_publish(None, None, 5, None, None)
    assert done == []
    tracker.on_publish(None, None, 6, None, None)
    assert done == ["a"]
    tracker.track([], lambda: done.append("empty"))
    assert done == ["a", "empty"]


class Acks:
    def __init__(self) -> None:
        self.mids: list[int] = []

    def ack_committed(self, mids: Any) -> None:
        self.mids.extend(mids)


def _envelope(mid: int, readings: tuple[Reading, ...]) -> Envelope:
    return Envelope(
        mid=mid, qos=1, topic=f"offsite/v1/devices/{MN}/hj212", device_id=MN, payload=b"##",
        received_at=datetime.now(UTC), readings=readings, relay=True,
    )  # fmt: skip


def test_a_relayed_packet_is_acknowledged_after_the_broker_has_the_relay(
    own_broker: EmbeddedBroker, db_url: str, db: psycopg.Connection[Any]
) -> None:
    # Stands in for the engine's subscription: a persistent session the broker keeps across
    # its restart (it has persistence on), so nothing relayed meanwhile is missed.
    got: list[tuple[str, bytes]] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{time.time_ns()}",
                          protocol=mqtt.MQTTv5)  # fmt: skip
    watcher.reconnect_delay_set(1, 1)
    subscribed = threading.Event()
    watcher.on_message = lambda c, u, m: got.append((m.topic, bytes(m.payload)))
    watcher.on_subscribe = lambda *a: subscribed.set()
    session = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    session.SessionExpiryInterval = 600
    watcher.connect("127.0.0.1", own_broker.port, clean_start=False, properties=session)
    watcher.loop_start()
    watcher.subscribe(RELAY_SUBSCRIPTION, qos=1)
    assert subscribed.wait(10)

    mqtt_settings = MqttSettings(url=own_broker.url, client_id="relay-ack",
                                 reconnect_min_s=0.2, reconnect_max_s=0.5)  # fmt: skip
    acks = Acks()
    connection: RelayConnection | None = None

    def publish(topic: str, payload: bytes) -> int:
        assert connection is not None
        return connection.publish(topic, payload)

    relay = EngineRelay(publish)
    connection = RelayConnection(mqtt_settings, own_broker.url, relay.tracker.on_publish)
    writer = WriterLoop(IngestSettings(batch_max_wait_ms=5), db_url,
                        IngestMetrics(CollectorRegistry()), acker=acks, relay=relay)  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    readings = (Reading(now - timedelta(minutes=1), MN, "w01018", 88.5),)
    connection.start()
    writer.start()
    try:
        wait_until(lambda: connection.connected, timeout=10, what="relay up")
        own_broker.stop()
        wait_until(lambda: not connection.connected, timeout=10, what="relay down")
        writer.put(_envelope(11, readings), threading.Event())

        def stored() -> int:
            row = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (MN,))
            return int(row.fetchone()[0])  # type: ignore[index]

        wait_until(lambda: stored() == 1, timeout=10, what="the reading committed")
        time.sleep(1.5)
        assert acks.mids == [], "acknowledged before the broker had the relay"

        own_broker.start()
        wait_until(lambda: acks.mids == [11], timeout=20, what="the ack once the relay is in")
        wait_until(lambda: len(got) == 1, timeout=10, what="the relay at the engine's topic")
        assert got[0][0] == relay_topic(MN)

        # The same packet again: stored already, relayed as resent, acknowledged after.
        writer.put(_envelope(12, readings), threading.Event())
        wait_until(lambda: acks.mids == [11, 12], timeout=20, what="the second ack")
        wait_until(lambda: len(got) == 2, timeout=10, what="the resent relay")
        assert got[1][0] == relay_topic(MN, resent=True)
        assert got[1][1] == got[0][1]
        assert stored() == 1
    finally:
        writer.stop()
        connection.stop()
        watcher.disconnect()
        watcher.loop_stop()
