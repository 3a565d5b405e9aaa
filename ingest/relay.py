"""Committed readings that did not arrive as MQTT telemetry, handed to an engine elsewhere.

The active engine reads every device's stream from the broker with its own subscription
(failover/feed.py). HJ 212 packets do not give it one: a data logger's TCP packets reach
only the gateway, and packets on the hj212 channel are decoded by ingest alone. When the
engine is not in this process, their readings are published again once committed, as
telemetry JSON on offsite/v1/relay/{device}/telemetry at QoS 1, a tree only the engine
subscribes to. Only newly stored readings are relayed: a logger's resend of what is stored
already is not evaluated twice.

What this does not cover: a process that dies between the commit and the broker taking the
publish loses those readings for the rules (they are stored); paho queues publishes while
the broker is away, so a broker outage only delays them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ingest.intake import BrokerAddress, broker_client
from ingest.models import Reading
from ingest.settings import MqttSettings
from ingest.topics import relay_topic


def relay_payload(readings: Sequence[Reading]) -> bytes:
    """One device's readings as the telemetry contract's batch: an entry per time, its
    values, and the flags of those that are not N."""
    entries: dict[int, dict[str, Any]] = {}
    for r in readings:
        ms = round(r.time.timestamp() * 1000)
        entry = entries.get(ms)
        if entry is None:
            entry = entries[ms] = {"ts": ms, "values": {}}
        entry["values"][r.metric] = r.value
        if r.flag != "N":
            entry.setdefault("flags", {})[r.metric] = r.flag
    return orjson.dumps(list(entries.values()))


class EngineRelay:
    """Publishes committed readings for the engine's subscription (a ReadingSink)."""

    def __init__(self, publish: Callable[[str, bytes], None]) -> None:
        self._publish = publish

    def readings_committed(self, readings: Sequence[Reading]) -> None:
        by_device: dict[str, list[Reading]] = defaultdict(list)
        for r in readings:
            by_device[r.device_id].append(r)
        for device, rows in by_device.items():
            self._publish(relay_topic(device), relay_payload(rows))


class RelayConnection:
    """A broker connection of the relay's own, for a process without an MQTT intake (the
    parent of ingest child processes, which keeps the HJ 212 gateway). Elsewhere the relay
    publishes on the intake's connection: a second login of a worker's broker user would
    take the worker's session over where client ids are bound to user names."""

    def __init__(self, settings: MqttSettings, broker_url: str) -> None:
        address = BrokerAddress(broker_url)
        # A clean session: what is queued is this client's own publishes, kept by paho
        # across a reconnect; the broker holds nothing for it.
        self._client = broker_client(mqtt.Client, f"{settings.client_id}-relay", settings, address)
        self._address = address
        self._keepalive = settings.keepalive_s

    def start(self) -> None:
        self._client.connect_async(self._address.host, self._address.port, self._keepalive)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        # Non-blocking: paho queues the message (while disconnected too) and sends it.
        self._client.publish(topic, payload, qos=1)
