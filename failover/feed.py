"""The active engine's own subscription: every device's full stream, in order, whatever the
ingest layout.

A non-shared QoS 1 subscription under one fixed client id with a persistent session, so the
broker is the log: a message is acknowledged only once the clue transitions its readings
caused are committed (RuleService.evaluate's callback), and whatever is unacknowledged when
the engine dies is delivered again to the engine that takes the session over. Ingest stores
the same messages through its shared group; the engine never writes readings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from failover.metrics import EngineMetrics
from failover.repair import GapRepair
from failover.settings import EngineSettings
from ingest.codec import Limits, decode_status, decode_telemetry
from ingest.intake import (
    SESSION_TAKEN_OVER,
    BrokerAddress,
    connect_persistent,
    persistent_client,
)
from ingest.models import DeviceStatus, Reading
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.topics import (
    RELAY_SUBSCRIPTION,
    Channel,
    TopicError,
    parse_topic,
    relayed_device,
    subscription,
)

log = logging.getLogger(__name__)


class Evaluator(Protocol):
    """The rule service as the feed sees it."""

    def evaluate(self, readings: Sequence[Reading], done: Callable[[], None]) -> None: ...

    def status_changed(self, status: DeviceStatus) -> None: ...


class EngineFeed:
    """paho client of the active engine; hands readings to the rules, acks after commit."""

    def __init__(
        self,
        settings: EngineSettings,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        storage_settings: StorageSettings,
        broker_url: str,
        evaluator: Evaluator,
        metrics: EngineMetrics,
        repair: GapRepair | None = None,
    ) -> None:
        self.settings = settings
        self.mqtt = mqtt_settings
        self.address = BrokerAddress(settings.broker_url or broker_url)
        self.evaluator = evaluator
        self.metrics = metrics
        self.repair = repair
        self.limits = Limits(
            max_payload_bytes=ingest_settings.max_payload_bytes,
            max_future=timedelta(seconds=ingest_settings.max_future_s),
            retention=storage_settings.retention,
        )
        # Newest reading time handed to the rules, per device (epoch seconds): a message the
        # broker sends again (DUP) carries readings at or before it that were evaluated
        # already, after a takeover (marks from engine_progress) or a broker restart.
        self.marks: dict[str, float] = {}
        self.connected = False
        self.session_present: bool | None = None
        self._connack = threading.Event()
        self._suback = threading.Event()
        self._stopping = threading.Event()
        self._client = self._build_client()

    def _build_client(self) -> mqtt.Client:
        client = persistent_client(mqtt.Client, self.settings.client_id, self.mqtt, self.address)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = lambda *_: self._suback.set()
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        if self.repair is not None:
            self.repair.start()
        connect_persistent(self._client, self.mqtt, self.address)

    def wait_connected(self, timeout: float) -> bool:
        return self._connack.wait(timeout)

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the broker has confirmed the subscription (its SUBACK)."""
        return self._suback.wait(timeout)

    def stop(self) -> None:
        """Disconnect without acknowledging more: the session keeps the rest."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()
        self.connected = False
        self.metrics.connected.set(0)
        if self.repair is not None:
            self.repair.stop()  # what waits there is unacknowledged: the session keeps it

    def _ack(self, mid: int, qos: int) -> Callable[[], None]:
        def ack() -> None:
            if qos > 0:
                self._client.ack(mid, qos)

        return ack

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the engine's connection: %s", reason_code)
            return
        self.connected = True
        self.metrics.connected.set(1)
        if self.repair is not None:
            self.repair.connected()
        present = bool(getattr(flags, "session_present", False))
        if self.session_present is None:
            self.session_present = present
        elif not present:
            log.error(
                "the broker has no session for the engine's client id %r after a reconnect:"
                " what it held for the engine is lost (session expiry, queue limits or broker"
                " state; docs/operators.md 'Engine failover')",
                self.settings.client_id,
            )
        topic = subscription(None)  # never shared: the engine needs every message
        # HJ 212 readings come relayed by the ingest process that stored them.
        client.subscribe([(topic, 1), (RELAY_SUBSCRIPTION, 1)])
        log.info("engine subscribed to %s as %r (session present: %s)",
                 topic, self.settings.client_id, present)  # fmt: skip
        self._connack.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        self.connected = False
        self.metrics.connected.set(0)
        if self.repair is not None and not self._stopping.is_set():
            self.repair.disconnected()
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER:
            log.error("another client took the engine's client id %r", self.settings.client_id)
        elif not self._stopping.is_set():
            log.warning("engine disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # left unacknowledged: the next engine gets it
        ack = self._ack(msg.mid, msg.qos)
        topic = msg.topic
        relayed = relayed_device(topic)
        channel = Channel.TELEMETRY
        if relayed is not None:
            device, again = relayed
        else:
            try:
                parsed = parse_topic(topic)
            except TopicError:
                self._skip(ack, "ignored")
                return
            device, channel, again = parsed.device_id, parsed.channel, False
        if msg.retain or channel not in (Channel.TELEMETRY, Channel.STATUS):
            # Retained copies are replays of what was evaluated live; frames are not the
            # engine's input, and HJ 212 packets come decoded on the relay topics.
            self._skip(ack, "ignored")
            return
        now = datetime.now(UTC)
        if channel is Channel.STATUS:
            online = decode_status(bytes(msg.payload))
            status = DeviceStatus(device, online, now) if online is not None else None

            def status_then() -> None:
                if status is not None:
                    self.evaluator.status_changed(status)
                self.evaluator.evaluate((), ack)

            self._hand((), status_then)
            self.metrics.messages.labels("status").inc()
            return
        decoded = decode_telemetry(device, bytes(msg.payload), self.limits, now)
        readings = decoded.readings
        # Relayed readings were committed before they were relayed; the device's own are
        # ingest's to store, and the gap repair's while a window is open.
        to_store = () if relayed is not None else readings
        mark = self.marks.get(device)
        # A redelivered message, or relayed readings that were stored already (a packet that
        # came again): what is at or before the mark was evaluated.
        if (msg.dup or again) and mark is not None and readings:
            fresh = tuple(r for r in readings if r.time.timestamp() > mark)
            if len(fresh) < len(readings):
                self.metrics.redelivered_skipped.inc(len(readings) - len(fresh))
            readings = fresh
        if readings:
            newest = max(r.time.timestamp() for r in readings)
            if mark is None or newest > mark:
                self.marks[device] = newest
        # Acknowledged through the rules queue even when nothing is left to evaluate: the
        # callback runs after the commit of everything handed over before it.
        self._hand(to_store, lambda: self.evaluator.evaluate(readings, ack))
        self.metrics.messages.labels("evaluated" if readings else "skipped").inc()

    def _hand(self, to_store: Sequence[Reading], then: Callable[[], None]) -> None:
        """`then` hands the message to the rules: at once, or once the gap repair has
        stored `to_store` (failover/repair.py)."""
        if self.repair is None:
            then()
        else:
            self.repair.hand(to_store, then)

    def _skip(self, ack: Callable[[], None], result: str) -> None:
        self._hand((), lambda: self.evaluator.evaluate((), ack))
        self.metrics.messages.labels(result).inc()
