"""The device-side topic contract: offsite/v1/devices/{device}/{telemetry|frames|status|hj212}."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

PREFIX = "offsite/v1/devices/"
DEVICE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# Every level below the prefix, so a topic outside the contract (an extra level, a missing
# channel) still arrives and becomes an `unknown_topic` dead letter instead of vanishing.
SUBSCRIPTION = PREFIX + "#"


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    FRAMES = "frames"
    STATUS = "status"
    HJ212 = "hj212"


@dataclass(frozen=True, slots=True)
class Topic:
    device_id: str
    channel: Channel


class TopicError(ValueError):
    """The topic is outside the contract; the message says which part and why."""

    def __init__(self, message: str, device_id: str | None = None) -> None:
        super().__init__(message)
        # Set when the device part is valid, so the dead letter can be found by device.
        self.device_id = device_id


_CHANNELS = {c.value: c for c in Channel}


@lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> Topic:
    """The device and channel of a topic in the contract; raises TopicError for any other.
    Cached: a device publishes on the same few topics all day (errors are not cached)."""
    if not topic.startswith(PREFIX):
        raise TopicError(f"topic {topic!r} is not under {PREFIX}")
    rest = topic[len(PREFIX) :].split("/")
    if len(rest) != 2:
        device = rest[0] if DEVICE_ID.fullmatch(rest[0]) else None
        raise TopicError(f"topic {topic!r} must be {PREFIX}{{device}}/{{channel}}", device)
    device, channel = rest
    if not DEVICE_ID.fullmatch(device):
        raise TopicError(f"device id {device!r} must match [A-Za-z0-9_.-]{{1,64}}")
    kind = _CHANNELS.get(channel)
    if kind is None:
        raise TopicError(
            f"channel {channel!r} is not one of {', '.join(sorted(_CHANNELS))}", device
        )
    return Topic(device, kind)


# Readings that never crossed the broker as telemetry (HJ 212 packets, over TCP or on the
# hj212 channel) published again, once committed, for an engine in another process: only
# the engine's own subscription reads this tree, so ingest never stores them twice.
RELAY_PREFIX = "offsite/v1/relay/"
RELAY_SUBSCRIPTION = RELAY_PREFIX + "+/+"
# Readings committed for the first time, and readings stored already that came again (a
# redelivered or resent packet): the engine skips those of the second kind it has evaluated.
RELAY_FRESH = "telemetry"
RELAY_RESENT = "resent"


class RelayedTopic(NamedTuple):
    device_id: str
    resent: bool


def relay_topic(device_id: str, resent: bool = False) -> str:
    return f"{RELAY_PREFIX}{device_id}/{RELAY_RESENT if resent else RELAY_FRESH}"


def relayed_device(topic: str) -> RelayedTopic | None:
    """The device of a relay topic and whether it carries resent readings; None when the
    topic is not one."""
    if not topic.startswith(RELAY_PREFIX):
        return None
    device, _, kind = topic[len(RELAY_PREFIX) :].partition("/")
    if kind not in (RELAY_FRESH, RELAY_RESENT) or not DEVICE_ID.fullmatch(device):
        return None
    return RelayedTopic(device, kind == RELAY_RESENT)


def subscription(shared_group: str | None) -> str:
    """The filter offsite subscribes to, through a shared group when several instances run."""
    return f"$share/{shared_group}/{SUBSCRIPTION}" if shared_group else SUBSCRIPTION


def telemetry_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/{Channel.TELEMETRY.value}"


def frames_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/{Channel.FRAMES.value}"


def status_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/{Channel.STATUS.value}"


def hj212_topic(device_id: str) -> str:
    return f"{PREFIX}{device_id}/{Channel.HJ212.value}"
