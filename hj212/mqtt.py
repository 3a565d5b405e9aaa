"""HJ 212 packets over MQTT (offsite/v1/devices/{MN}/hj212): the same decoding as TCP."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from hj212.decoder import Decoder
from hj212.metrics import Hj212Metrics
from hj212.packet import Packet
from hj212.registry import LoggerRegistry
from hj212.settings import Hj212Settings
from hj212.split import Reassembler
from ingest.models import DeadLetter, RawDecoded, RejectReason

# Devices whose split pieces are tracked at once; the least recently heard is dropped.
_MAX_DEVICES = 10000


@dataclass(eq=False)
class MqttPackets:
    """ingest's PacketDecoder for the hj212 channel; runs on the MQTT thread."""

    settings: Hj212Settings
    decoder: Decoder
    registry: LoggerRegistry
    metrics: Hj212Metrics
    _splits: OrderedDict[str, Reassembler] = field(default_factory=OrderedDict, init=False)

    def _reassembler(self, device_id: str) -> Reassembler:
        r = self._splits.get(device_id)
        if r is None:
            r = self._splits[device_id] = Reassembler(
                self.settings.split_timeout_s, self.settings.max_pending_splits
            )
            if len(self._splits) > _MAX_DEVICES:
                self._splits.popitem(last=False)
        self._splits.move_to_end(device_id)
        return r

    def decode_packet(
        self, device_id: str, topic: str, payload: bytes, now: datetime
    ) -> RawDecoded:
        got = self.decoder.frame(payload, topic)
        if not isinstance(got, Packet):
            self.metrics.packets.labels("rejected", "unknown").inc()
            return RawDecoded(dead_letters=(got,))
        p = got
        if p.mn != device_id:
            self.metrics.packets.labels("rejected", p.version).inc()
            detail = f"the packet's MN {p.mn} is not the topic's device {device_id}"
            return RawDecoded(
                dead_letters=(
                    DeadLetter(topic, device_id, RejectReason.BAD_DEVICE_ID, detail, payload),
                )
            )
        if not p.length_ok:
            self.metrics.length_mismatch.inc()
        letter = self.decoder.authenticated(p, self.registry.check(p.mn, p.pw), topic)
        if letter is not None:
            self.metrics.packets.labels("refused", p.version).inc()
            return RawDecoded(dead_letters=(letter,))
        out = self.decoder.packet(p, topic, now, self._reassembler(device_id), time.monotonic)
        if not out.store:
            self.metrics.packets.labels("held", p.version).inc()
            return RawDecoded(held=True)
        self.metrics.packets.labels("stored" if out.readings else "rejected", p.version).inc()
        released = bool(out.packet is not None and out.packet.parts) or any(
            d.reason is RejectReason.INCOMPLETE_SPLIT for d in out.letters
        )
        return RawDecoded(out.readings, out.letters, releases=released)
