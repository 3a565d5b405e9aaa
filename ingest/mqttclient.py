"""A paho client with a buffered socket read and batched PUBACKs.

Profiling an ingest process under a stream of small messages showed most of its time in
paho's receive path, and most of that in system calls: paho reads a packet with three
`recv` calls (command byte, length bytes, body) and goes back to `select` after every
packet, and it sends each PUBACK with its own wake-up and `send`. Here one `recv` fills a
buffer that the following packets are parsed from without another `select`, and the PUBACKs
of a committed batch go out as one write. With no per-topic callbacks, a message goes
straight to `on_message`, without paho's walk of its empty callback tree, and a PUBLISH
without MQTT 5 properties (nearly all of them) is decoded without building paho's
`Properties` object. The MQTT behaviour is paho's own: only where the bytes come from, how
a plain PUBLISH is decoded, how the acks are queued and how on_message is reached change
(paho 2.x's private hooks; the version is pinned below 3 in pyproject.toml, and
tests/ingest exercise this class on every run, one test comparing its decoding with
paho's own).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_READ_SIZE = 256 * 1024
_PUBACK = 0x40
# Packets parsed from the buffer between two rounds of sending and keepalive upkeep.
_SERVICE_EVERY = 64  # MQTT fixed header of PUBACK (type 4, flags 0)


# The properties of every fast-decoded PUBLISH (none were sent): one shared, empty, never
# written object instead of a new one a message.
_NO_PROPERTIES = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._filtered = False

    def message_callback_add(self, sub: str, callback: Any) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _handle_publish(self) -> MQTTErrorCode:
        # paho builds and parses an MQTT 5 Properties object for every PUBLISH: about 10 µs,
        # a quarter of an ingest process's time per single-reading message. Almost every
        # PUBLISH the broker sends carries none (property length 0), so those are decoded
        # here; any with properties, QoS 2 and MQTT 3.1.1 take paho's own path.
        packet = self._in_packet["packet"]
        header = self._in_packet["command"]
        qos = (header & 0x06) >> 1
        if self._protocol != MQTTProtocolVersion.MQTTv5 or qos == 2:
            return super()._handle_publish()
        end = 2 + int.from_bytes(packet[:2], "big")
        topic = bytes(memoryview(packet)[2:end])
        mid = 0
        if qos:
            mid = int.from_bytes(packet[end : end + 2], "big")
            end += 2
        if end >= len(packet) or packet[end] != 0:
            return super()._handle_publish()
        message = mqtt.MQTTMessage(mid=mid, topic=topic)
        message.dup = bool(header & 0x08)
        message.qos = qos
        message.retain = bool(header & 0x01)
        message.properties = _NO_PROPERTIES
        message.payload = bytes(memoryview(packet)[end + 1 :])
        message.timestamp = mqtt.time_func()
        self._handle_on_message(message)
        if qos == 0 or self._manual_ack:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        return self._send_puback(mid)

    def _handle_on_message(self, message: mqtt.MQTTMessage) -> None:
        # Without per-topic callbacks (offsite registers none) skip paho's walk of its topic
        # tree, and the topic decode it needs, on every message: on_message is called as
        # paho calls it, exceptions included.
        if self._filtered:
            super()._handle_on_message(message)
            return
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(mqtt.MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            data = super()._sock_recv(_READ_SIZE)  # raises BlockingIOError when empty
            if not data:
                return data  # the broker closed the connection
            self._rbuf, self._rpos = data, 0
        end = self._rpos + bufsize
        chunk = self._rbuf[self._rpos : end]
        self._rpos = min(end, len(self._rbuf))
        return chunk

    def _buffered(self) -> bool:
        return self._rpos < len(self._rbuf)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        # select() cannot see bytes already in our buffer: parse them all before returning.
        n = 0
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._buffered() and self._sock:
            rc = super().loop_read(1)
            n += 1
            if n % _SERVICE_EVERY == 0 and rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                rc = self._service()
        return rc

    def _service(self) -> MQTTErrorCode:
        # Under a steady stream the buffer may never run dry, and paho's loop, which sends
        # queued packets (our PUBACKs) and keeps the keepalive, would not be reached: do its
        # writing and upkeep from here too (same thread, as paho's loop does).
        if self.want_write():
            rc = self.loop_write()
            if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
                return rc
        return self.loop_misc()

    def _sock_close(self) -> None:
        # A new connection must not start with the old one's unread bytes.
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    def ack_many(self, mids: Iterable[int]) -> None:
        """PUBACK every QoS 1 message id in one queued write (one wake-up, one send)."""
        packet = b"".join(struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids)
        if packet:
            self._packet_queue(_PUBACK, packet, 0, 1)
