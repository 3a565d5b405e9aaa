"""MQTT intake: a paho client with a persistent session that acks only after commit."""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.codec import Limits, decode_status, decode_telemetry
from ingest.metrics import IngestMetrics
from ingest.models import (
    DeadLetter,
    DeviceStatus,
    FrameMessage,
    FrameSink,
    PacketDecoder,
    Reading,
    Rejection,
    RejectReason,
)
from ingest.mqttclient import BufferedClient
from ingest.settings import IngestSettings, MqttSettings, StorageSettings
from ingest.topics import Channel, TopicError, parse_topic, subscription
from ingest.writer import Envelope, WriterLoop

log = logging.getLogger(__name__)

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client took the client id


class BrokerAddress:
    """host, port, credentials and TLS flag parsed from mqtt:// or mqtts://."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"broker url {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker url {url!r} has no host")
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.host = parts.hostname
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None


def device_time(props: Properties | None) -> datetime | None:
    """The MQTT 5 user property `ts` (epoch ms): a frame's device time by contract."""
    for key, value in getattr(props, "UserProperty", None) or []:
        if key == "ts":
            try:
                return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
            except (ValueError, OverflowError, OSError):
                return None
    return None


ClientT = TypeVar("ClientT", bound=mqtt.Client)


def broker_client(
    cls: type[ClientT],
    client_id: str,
    settings: MqttSettings,
    address: BrokerAddress,
    persistent: bool = False,
) -> ClientT:
    """A paho client of offsite's: the protocol, login, TLS and reconnect delays of the
    settings. `persistent`: a QoS 1 session that outlives a disconnect and acknowledges by
    hand (after the commit), as the ingest intake and the engine's own subscription hold."""
    v5 = settings.protocol == "5"
    client = cls(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        # MQTT 3.1.1 has no session expiry: a persistent session is clean_session=False.
        clean_session=None if v5 else not persistent,
        manual_ack=persistent,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set()
    client.reconnect_delay_set(
        min_delay=max(1, int(settings.reconnect_min_s)),
        max_delay=max(1, int(settings.reconnect_max_s)),
    )
    return client


def persistent_client(
    cls: type[ClientT], client_id: str, settings: MqttSettings, address: BrokerAddress
) -> ClientT:
    """broker_client with a persistent session and acknowledgement by hand."""
    return broker_client(cls, client_id, settings, address, persistent=True)


def connect_persistent(client: mqtt.Client, settings: MqttSettings, address: BrokerAddress) -> None:
    """Connect in the background keeping the session (MQTT 5: its expiry and receive maximum)."""
    if settings.protocol == "5":
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = settings.session_expiry_s
        props.ReceiveMaximum = settings.receive_maximum
        client.connect_async(
            address.host,
            address.port,
            keepalive=settings.keepalive_s,
            clean_start=False,
            properties=props,
        )
    else:
        client.connect_async(address.host, address.port, keepalive=settings.keepalive_s)
    client.loop_start()


class MqttIntake:
    """Subscribes to every device topic; telemetry and status go to the writer queue."""

    def __init__(
        self,
        mqtt_settings: MqttSettings,
        ingest_settings: IngestSettings,
        storage_settings: StorageSettings,
        broker_url: str,
        writer: WriterLoop,
        metrics: IngestMetrics,
        frame_sink: FrameSink | None = None,
        packet_decoder: PacketDecoder | None = None,
        frames_elsewhere: bool = False,
    ) -> None:
        self.settings = mqtt_settings
        # Frames are a video worker's (it subscribes to its cameras): acknowledge, skip.
        self.frames_elsewhere = frames_elsewhere
        self.packet_decoder = packet_decoder
        # Split HJ 212 pieces per device, acknowledged when their packet is committed.
        self._held: dict[str, list[tuple[int, int]]] = {}
        self.address = BrokerAddress(broker_url)
        self.writer = writer
        self.metrics = metrics
        self.frame_sink = frame_sink
        self.limits = Limits(
            max_payload_bytes=ingest_settings.max_payload_bytes,
            max_future=timedelta(seconds=ingest_settings.max_future_s),
            retention=storage_settings.retention,
        )
        self.connected = False
        self._connected_before = False
        self._left_group = False
        self._stopping = threading.Event()
        self._client = self._build_client()

    def _build_client(self) -> BufferedClient:
        client = persistent_client(
            BufferedClient, self.settings.client_id, self.settings, self.address
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        connect_persistent(self._client, self.settings, self.address)

    def stop_receiving(self) -> None:
        """Messages arriving from now on are left unacknowledged for the broker to redeliver."""
        self._stopping.set()

    def leave_group(self) -> None:
        """UNSUBSCRIBE: from now on the broker deals this client none of the stream (what it
        delivered or queued before still arrives, and is committed and acknowledged)."""
        self._left_group = True
        self._client.unsubscribe(subscription(self.settings.shared_group))

    def disconnect(self) -> None:
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()
        self.connected = False
        self.metrics.mqtt_connected.set(0)

    def ack(self, mid: int, qos: int) -> None:
        """PUBACK after commit; called from the writer thread (paho queues it thread-safely)."""
        self._client.ack(mid, qos)

    def publish(self, topic: str, payload: bytes) -> int:
        """A QoS 1 publish on this connection (the relay's; thread-safe, never blocks): its
        message id, which the `on_publish` callback reports once the broker has it."""
        return self._client.publish(topic, payload, qos=1).mid

    def on_publish(self, callback: Callable[..., None]) -> None:
        self._client.on_publish = callback

    def ack_many(self, mids: Sequence[int]) -> None:
        """The PUBACKs of a committed batch of QoS 1 messages, in one write."""
        self._client.ack_many(mids)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self.connected = True
        self.metrics.mqtt_connected.set(1)
        present = bool(getattr(flags, "session_present", False))
        if self._connected_before and not present:
            # The broker forgot us between two connections of this process: whatever it
            # had queued for offsite (and not yet acknowledged) is gone.
            self.metrics.mqtt_session_lost.inc()
            log.error(
                "the broker at %s:%d has no session for client id %r after a reconnect:"
                " messages it held for offsite were lost (session expired, broker state"
                " lost, or another client took the id; bind client ids to usernames,"
                " see docs/operators.md)",
                self.address.host,
                self.address.port,
                self.settings.client_id,
            )
        self._connected_before = True
        if self._left_group:
            return  # retiring (ingest/retire.py): the broker deals this client nothing more
        topic = subscription(self.settings.shared_group)
        client.subscribe(topic, qos=1)
        log.info(
            "connected to %s:%d (session present: %s), subscribed to %s",
            self.address.host,
            self.address.port,
            present,
            topic,
        )

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: Any,
        properties: Any,
    ) -> None:
        self.connected = False
        self.metrics.mqtt_connected.set(0)
        if getattr(reason_code, "value", None) == SESSION_TAKEN_OVER:
            self.metrics.mqtt_session_taken_over.inc()
            log.error(
                "another client connected with offsite's client id %r and the broker"
                " dropped offsite; bind client ids to usernames (docs/operators.md)",
                self.settings.client_id,
            )
        elif not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return
        now = datetime.now(UTC)
        topic = msg.topic
        payload = bytes(msg.payload)  # paho types it bytes | bytearray; it is bytes here
        try:
            parsed = parse_topic(topic)
        except TopicError as err:
            self._reject(msg, err.device_id, now, RejectReason.UNKNOWN_TOPIC, str(err))
            return
        device = parsed.device_id
        if parsed.channel is Channel.TELEMETRY and msg.retain:
            # A retained message is replayed on every subscribe; a bare one would be stored
            # again each time under a new server time. Its live copy (delivered without the
            # retain flag) was stored when it was published.
            self.metrics.retained_ignored.inc()
            log.debug("retained telemetry of %s ignored", device)
            if msg.qos > 0:
                self.ack(msg.mid, msg.qos)
            return
        if parsed.channel is Channel.TELEMETRY:
            decoded = decode_telemetry(device, payload, self.limits, now)
            letters = _merge_rejections(topic, device, payload, decoded.rejections)
            self._enqueue(msg, device, now, readings=decoded.readings, letters=letters, topic=topic)
        elif parsed.channel is Channel.STATUS:
            online = decode_status(payload)
            if online is None:
                shown = payload[:40].decode("utf-8", "replace")
                self._reject(
                    msg, device, now, RejectReason.BAD_STATUS,
                    f"status payload must be 'online' or 'offline', got {shown!r}",
                )  # fmt: skip
            else:
                self._enqueue(msg, device, now, status=DeviceStatus(device, online, now))
        elif parsed.channel is Channel.HJ212:
            self._packet(msg, device, now, payload)
        elif self.frame_sink is not None:
            # Frames are lossy by nature: the video queue drops the oldest when full and
            # counts it, so a frame is acknowledged as soon as it is handed over.
            self.frame_sink.frame_received(
                FrameMessage(device, payload, device_time(msg.properties), now)
            )
            self.metrics.messages.labels("frame").inc()
            if msg.qos > 0:
                self.ack(msg.mid, msg.qos)
        elif self.frames_elsewhere:
            self.metrics.messages.labels("frame_elsewhere").inc()
            if msg.qos > 0:
                self.ack(msg.mid, msg.qos)
        else:
            self._reject(
                msg, device, now, RejectReason.UNKNOWN_TOPIC,
                "frames are not accepted: the video pipeline is not running",
            )  # fmt: skip

    def _packet(self, msg: mqtt.MQTTMessage, device: str, now: datetime, payload: bytes) -> None:
        if self.packet_decoder is None:
            self._reject(
                msg, device, now, RejectReason.UNKNOWN_TOPIC,
                "HJ 212 packets are not accepted: the hj212 gateway is disabled",
            )  # fmt: skip
            return
        decoded = self.packet_decoder.decode_packet(device, msg.topic, payload, now)
        if decoded.held:
            self._held.setdefault(device, []).append((msg.mid, msg.qos))
            return
        acks = self._held.pop(device, []) if decoded.releases else []
        on_commit = None
        if acks:
            acks.append((msg.mid, msg.qos))

            def on_commit() -> None:
                for mid, qos in acks:
                    if qos > 0:
                        self.ack(mid, qos)

        self._enqueue(
            msg,
            device,
            now,
            readings=decoded.readings,
            letters=list(decoded.dead_letters),
            on_commit=on_commit,
            relay=True,  # the engine's own subscription does not decode HJ 212 packets
        )

    def _reject(
        self,
        msg: mqtt.MQTTMessage,
        device: str | None,
        now: datetime,
        reason: RejectReason,
        detail: str,
    ) -> None:
        """Dead-letter the whole message (committed, then acknowledged, like any other)."""
        letter = DeadLetter(msg.topic, device, reason, detail, bytes(msg.payload))
        self._enqueue(msg, device, now, letters=[letter])

    def _enqueue(
        self,
        msg: mqtt.MQTTMessage,
        device: str | None,
        now: datetime,
        readings: tuple[Reading, ...] = (),
        letters: list[DeadLetter] | None = None,
        status: DeviceStatus | None = None,
        on_commit: Callable[[], None] | None = None,
        topic: str | None = None,
        relay: bool = False,
    ) -> None:
        env = Envelope(
            mid=msg.mid,
            qos=msg.qos,
            # paho decodes the topic on every access: the caller passes it when it has it.
            topic=msg.topic if topic is None else topic,
            device_id=device,
            payload=bytes(msg.payload),
            received_at=now,
            readings=readings,
            dead_letters=tuple(letters or ()),
            status=status,
            on_commit=on_commit,
            relay=relay,
        )
        # Blocks while the writer is behind: that is the back-pressure. On shutdown the
        # message is simply not acknowledged, and the broker redelivers it later.
        self.writer.put(env, self._stopping)


def _merge_rejections(
    topic: str, device: str, payload: bytes, rejections: tuple[Rejection, ...]
) -> list[DeadLetter]:
    if not rejections:
        return []
    # One dead letter per reason per message: a batch with 100 bad entries is one row
    # per reason, with every detail listed, not 100 copies of the payload.
    by_reason: dict[RejectReason, list[str]] = defaultdict(list)
    for r in rejections:
        by_reason[r.reason].append(r.detail)
    return [
        DeadLetter(topic, device, reason, "; ".join(details), payload)
        for reason, details in by_reason.items()
    ]
