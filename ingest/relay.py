"""Committed readings that did not arrive as MQTT telemetry, handed to an engine elsewhere.

The active engine reads every device's stream from the broker with its own subscription
(failover/feed.py). HJ 212 packets do not give it one: a data logger's TCP packets reach
only the gateway, and packets on the hj212 channel are decoded by ingest alone. When the
engine is not in this process, their readings are published again once committed, as
telemetry JSON on offsite/v1/relay/{device}/telemetry at QoS 1, a tree only the engine
subscribes to.

A packet is acknowledged (its PUBACK, or the gateway's reply over TCP) only once the broker
has acknowledged the relay of its readings, so a process that dies between the commit and
the relay leaves the packet unacknowledged: the broker redelivers it, or the logger sends
it again. Its readings are stored by then, and readings stored already that come again are
relayed on offsite/v1/relay/{device}/resent, which the engine skips where it has evaluated
them (as it skips a redelivered message).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from ingest.intake import BrokerAddress, broker_client
from ingest.models import Reading
from ingest.settings import MqttSettings
from ingest.topics import relay_topic

log = logging.getLogger(__name__)


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


# Publish ids the broker acknowledged before the relay claimed them (paho's network thread
# may see the PUBACK before publish() returns the id): a few at a time, bounded anyway.
_EARLY_KEPT = 4096


@dataclass(slots=True)
class _Group:
    left: int
    done: Callable[[], None]


class PublishTracker:
    """Runs a callback once the broker has acknowledged every publish of a group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[int, _Group] = {}
        self._early: OrderedDict[int, None] = OrderedDict()

    def track(self, mids: Sequence[int], done: Callable[[], None]) -> None:
        group = _Group(0, done)
        with self._lock:
            for mid in mids:
                if mid in self._early:
                    del self._early[mid]  # acknowledged already
                    continue
                self._waiting[mid] = group
                group.left += 1
        if group.left == 0:
            done()

    def on_publish(
        self, client: object, userdata: object, mid: int, reason_code: Any, props: object
    ) -> None:
        """paho's on_publish (callback API 2): the broker acknowledged `mid`."""
        if getattr(reason_code, "is_failure", False):
            # The broker refused it (an ACL without the relay tree): the readings are stored
            # but the engine will not see them. Holding the packet's ack would stall the
            # worker on every later packet, so it is acknowledged all the same, loudly.
            log.error("the broker refused a relay publish (%s): check the relay tree in the"
                      " ACL (deploy/mosquitto/acl.example)", reason_code)  # fmt: skip
        with self._lock:
            group = self._waiting.pop(mid, None)
            if group is None:
                self._early[mid] = None
                while len(self._early) > _EARLY_KEPT:
                    self._early.popitem(last=False)
                return
            group.left -= 1
            if group.left:
                return
        group.done()


class EngineRelay:
    """Publishes committed readings for the engine's subscription; `publish` returns the
    message id, and the tracker must get the connection's PUBACKs (on_publish)."""

    def __init__(self, publish: Callable[[str, bytes], int]) -> None:
        self._publish = publish
        self.tracker = PublishTracker()

    def relay(
        self, fresh: Sequence[Reading], resent: Sequence[Reading], done: Callable[[], None]
    ) -> None:
        """Publish `fresh` (newly stored) and `resent` (stored already) readings, one
        message per device and kind; `done` runs once the broker has them all."""
        mids: list[int] = []
        for readings, again in ((fresh, False), (resent, True)):
            by_device: dict[str, list[Reading]] = defaultdict(list)
            for r in readings:
                by_device[r.device_id].append(r)
            for device, rows in by_device.items():
                mids.append(self._publish(relay_topic(device, again), relay_payload(rows)))
        self.tracker.track(mids, done)


class RelayConnection:
    """A broker connection of the relay's own, for a process without an MQTT intake (the
    parent of ingest child processes, which keeps the HJ 212 gateway). Elsewhere the relay
    publishes on the intake's connection: a second login of a worker's broker user would
    take the worker's session over where client ids are bound to user names."""

    def __init__(
        self, settings: MqttSettings, broker_url: str, on_publish: Callable[..., None]
    ) -> None:
        address = BrokerAddress(broker_url)
        # A clean session: what is queued is this client's own publishes, kept by paho
        # across a reconnect; the broker holds nothing for it.
        self._client = broker_client(mqtt.Client, f"{settings.client_id}-relay", settings, address)
        self._client.on_publish = on_publish
        self._address = address
        self._keepalive = settings.keepalive_s

    def start(self) -> None:
        self._client.connect_async(self._address.host, self._address.port, self._keepalive)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._client.is_connected()

    def publish(self, topic: str, payload: bytes) -> int:
        # Non-blocking: paho queues the message (while disconnected too) and sends it.
        return self._client.publish(topic, payload, qos=1).mid
