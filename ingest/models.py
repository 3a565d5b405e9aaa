"""Typed messages that leave the ingest package: readings, device status, dead letters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple, Protocol


class RejectReason(StrEnum):
    """Why a message, or part of one, was not stored. Stored in dead_letters.reason."""

    NOT_JSON = "not_json"
    WRONG_SHAPE = "wrong_shape"
    EMPTY = "empty"
    NON_NUMERIC = "non_numeric"
    NOT_FINITE = "not_finite"
    BAD_METRIC = "bad_metric"
    BAD_TS = "bad_ts"
    FUTURE_TS = "future_ts"
    TOO_OLD = "too_old"
    TOO_LARGE = "too_large"
    UNKNOWN_TOPIC = "unknown_topic"
    BAD_DEVICE_ID = "bad_device_id"
    BAD_STATUS = "bad_status"
    CONFLICT = "conflict"
    BAD_FLAG = "bad_flag"
    BAD_FRAME = "bad_frame"
    BAD_CRC = "bad_crc"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_PASSWORD = "bad_password"  # noqa: S105 - a reason code, not a password
    UNSUPPORTED = "unsupported"
    INCOMPLETE_SPLIT = "incomplete_split"


class DataFlag(StrEnum):
    """HJ 212's data flags (数据标记): how the analyser was doing when it made the value."""

    NORMAL = "N"
    STOPPED = "F"
    MAINTENANCE = "M"
    MANUAL = "S"
    FAULT = "D"
    CALIBRATION = "C"
    OVER_RANGE = "T"
    COMMS = "B"


FLAGS = frozenset(f.value for f in DataFlag)


class Reading(NamedTuple):
    """One stored value: the natural key is (device_id, metric, time); `flag` is HJ 212's.

    A NamedTuple, not a frozen dataclass: ingest makes one per reading on its hottest path,
    where building a tuple costs a third of a frozen dataclass's per-field set-up, and the
    writer hands it to COPY as the row itself (the fields are the table's column order).
    """

    time: datetime
    device_id: str
    metric: str
    value: float
    flag: str = "N"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A part of a message that broke a rule; `detail` names the field and the rule."""

    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class DecodedTelemetry:
    """What a telemetry payload yields: the readings to store and what was refused."""

    readings: tuple[Reading, ...]
    rejections: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device said it is online or offline (its status topic or its will)."""

    device_id: str
    online: bool
    time: datetime


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message, or part of one, that could not be stored, with the reason."""

    topic: str
    device_id: str | None
    reason: RejectReason
    detail: str
    payload: bytes


class ReadingSink(Protocol):
    """Receives readings after they are committed; must not block the writer for long."""

    def readings_committed(self, readings: Sequence[Reading]) -> None: ...


class RelaySink(Protocol):
    """Hands committed readings of relay envelopes to an engine elsewhere (ingest/relay.py)."""

    def relay(
        self, fresh: Sequence[Reading], resent: Sequence[Reading], done: Callable[[], None]
    ) -> None:
        """`fresh` were stored by this commit, `resent` were stored already; `done` runs
        (on any thread, once) when they are handed over for good, and must not block."""
        ...


@dataclass(frozen=True, slots=True)
class FrameMessage:
    """A JPEG a camera published; decoding is the video package's job."""

    device_id: str
    payload: bytes
    device_time: datetime | None
    received_at: datetime


class FrameSink(Protocol):
    """Receives camera frames from the MQTT thread; must never block (drop, and count)."""

    def frame_received(self, frame: FrameMessage) -> None: ...


class StatusSink(Protocol):
    """Receives committed device status changes (status topic or will)."""

    def status_changed(self, status: DeviceStatus) -> None: ...


@dataclass(frozen=True, slots=True)
class RawDecoded:
    """What a raw-packet decoder (HJ 212 over MQTT) made of one message.

    `held`: a piece of a split packet kept back; it is acknowledged with the message that
    `releases` it (completes the packet, or gives up on it with a dead letter).
    """

    readings: tuple[Reading, ...] = ()
    dead_letters: tuple[DeadLetter, ...] = ()
    held: bool = False
    releases: bool = False


class PacketDecoder(Protocol):
    """Decodes the raw packets of the `hj212` channel (provided by the hj212 package)."""

    def decode_packet(
        self, device_id: str, topic: str, payload: bytes, now: datetime
    ) -> RawDecoded: ...
