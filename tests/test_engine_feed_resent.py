"""The engine's subscription evaluates a relayed reading once: readings relayed again as
`resent` (a packet redelivered after a crash between its commit and its relay) are skipped
where the engine has evaluated them, and evaluated where it has not. Real Mosquitto."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from failover.feed import EngineFeed
from failover.metrics import EngineMetrics
from failover.settings import EngineSettings
from ingest.models import DeviceStatus, Reading
from ingest.relay import relay_payload
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.topics import relay_topic
from offsite.embedded import EmbeddedBroker
from tests.helpers import Publisher, wait_until

MN = "88888880000010"


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[tuple[Reading, ...]] = []

    def evaluate(self, readings: Sequence[Reading], done: Callable[[], None]) -> None:
        with self.lock:
            self.batches.append(tuple(readings))
        done()

    def status_changed(self, status: DeviceStatus) -> None:
        pass


@pytest.mark.parametrize("resent", [False, True])
def test_relayed_readings_stored_already_are_not_evaluated_twice(
    own_broker: EmbeddedBroker, resent: bool
) -> None:
    # A broker of its own: the suite's has retained messages under offsite/v1/devices/#
    # (the simulator's), which the engine's subscription receives and skips first.
    broker = own_broker
    recorder = Recorder()
    feed = EngineFeed(
        EngineSettings(client_id=f"engine-resent-{time.time_ns()}"),
        MqttSettings(url=broker.url),
        IngestSettings(),
        StorageSettings(),
        broker.url,
        recorder,
        EngineMetrics(CollectorRegistry()),
    )
    feed.start()
    pub = Publisher(broker.port)
    try:
        # The SUBACK, not a pause: a busy shared broker (the whole suite's) can take longer
        # over the SUBSCRIBE than the publisher over its PUBLISH.
        assert feed.wait_subscribed(20), "no SUBACK for the engine's subscription"
        now = datetime.now(UTC).replace(microsecond=0)
        first = Reading(now - timedelta(minutes=2), MN, "w01018", 88.5)
        later = Reading(now - timedelta(minutes=1), MN, "w01018", 90.5)
        pub.publish(relay_topic(MN), relay_payload([first]))
        wait_until(lambda: len(recorder.batches) == 1, timeout=10, what="the first relay")
        # The same reading again, then one the engine has not seen, both as `kind`.
        pub.publish(relay_topic(MN, resent=resent), relay_payload([first]))
        pub.publish(relay_topic(MN, resent=resent), relay_payload([later]))
        wait_until(lambda: len(recorder.batches) == 3, timeout=10, what="both relays")
        assert recorder.batches[0] == (first,)
        # Sent as fresh, a repeat is evaluated again (a new packet's readings always are);
        # sent as resent, it is skipped: the engine has its mark past it.
        assert recorder.batches[1] == (() if resent else (first,))
        assert recorder.batches[2] == (later,)
    finally:
        pub.close()
        feed.stop()
