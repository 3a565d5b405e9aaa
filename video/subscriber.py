"""A leased video worker's own MQTT client: one subscription per camera it holds.

Not a shared group: the broker would round-robin a camera's frames over the members, and a
camera's motion model and tracks must see all of its frames in one place. QoS 0 and a clean
session: frames are lossy by nature, and frames queued for a dead worker are stale by the
time its cameras move on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from ingest.intake import BrokerAddress, broker_client, device_time
from ingest.models import FrameMessage
from ingest.settings import MqttSettings
from ingest.topics import PREFIX, frames_topic

log = logging.getLogger(__name__)

FrameHandler = Callable[[FrameMessage], None]


class FrameSubscriber:
    """Subscribes to `offsite/v1/devices/{camera}/frames` for the cameras it is told about."""

    def __init__(
        self, broker_url: str, settings: MqttSettings, client_id: str, on_frame: FrameHandler
    ) -> None:
        self.address = BrokerAddress(broker_url)
        self.settings = settings
        self.on_frame = on_frame
        self._cameras: set[str] = set()
        self._lock = threading.Lock()
        self.connected = False
        self._client = broker_client(mqtt.Client, client_id, settings, self.address)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message

    def start(self) -> None:
        kw: dict[str, Any] = {"keepalive": self.settings.keepalive_s}
        if self.settings.protocol == "5":
            kw["clean_start"] = True
        self._client.connect_async(self.address.host, self.address.port, **kw)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self.connected = False

    def subscribe(self, camera_ids: Sequence[str]) -> None:
        with self._lock:
            self._cameras.update(camera_ids)
        if self.connected and camera_ids:
            self._client.subscribe([(frames_topic(c), 0) for c in camera_ids])

    def unsubscribe(self, camera_ids: Sequence[str]) -> None:
        with self._lock:
            self._cameras.difference_update(camera_ids)
        if self.connected and camera_ids:
            self._client.unsubscribe([frames_topic(c) for c in camera_ids])

    def cameras(self) -> set[str]:
        with self._lock:
            return set(self._cameras)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the video worker's connection: %s", reason_code)
            return
        self.connected = True
        cams = sorted(self.cameras())
        if cams:  # a clean session: every subscription again after a reconnect
            client.subscribe([(frames_topic(c), 0) for c in cams])
        log.info("video frames: connected to %s:%d, subscribed to %d cameras",
                 self.address.host, self.address.port, len(cams))  # fmt: skip

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected = False
        log.warning("video frames: disconnected from the broker (%s)", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # The topic is one we subscribed to: offsite/v1/devices/{camera}/frames.
        camera = msg.topic[len(PREFIX) :].split("/", 1)[0]
        if camera not in self.cameras():
            return  # in flight while we unsubscribed; the lease moved on
        now = datetime.now(UTC)
        self.on_frame(FrameMessage(camera, bytes(msg.payload), device_time(msg.properties), now))
