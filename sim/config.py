"""The simulator's options: one pydantic model from which the command-line options are made."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ingest.intake import BrokerAddress
from ingest.topics import DEVICE_ID

# paho refuses to publish past 65,535 unacknowledged QoS 1 messages (its message ids).
MAX_INFLIGHT = 65_535
# More readings per second than this on one device would need sub-millisecond timestamps,
# and (device, metric, time) must stay unique.
MAX_READINGS_PER_DEVICE_S = 1000
MAX_BATCH = 1000
_ID_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,40}")


class SimConfigError(ValueError):
    """A simulator option is out of range; the message names the option and the rule."""


def option(default: Any, flag: str | None, text: str) -> Any:
    """A field with its command-line flag (None: settable from code only) and help text."""
    return Field(default, description=text, json_schema_extra={"flag": flag})


def flag_of(field_name: str) -> str:
    """The command-line spelling of a field, for error messages."""
    extra = SimConfig.model_fields[field_name].json_schema_extra
    flag = extra.get("flag") if isinstance(extra, dict) else None
    return str(flag) if flag else field_name


class SimConfig(BaseModel):
    """What to simulate and where to publish it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    broker_url: str = option("mqtt://127.0.0.1:1883", "--broker", "mqtt[s]://[user:pass@]host:port")
    devices: int = option(10, "--devices", "simulated sensors")
    rate: float = option(10.0, "--rate", "telemetry messages/s, all devices together")
    duration_s: float = option(
        10.0, "--duration", "seconds (rate × duration messages are sent); 0 runs until Ctrl-C"
    )
    batch: int = option(1, "--batch", "readings (timestamps) per message")
    qos: int = option(1, "--qos", "MQTT QoS of every publish: 0, 1 or 2")
    username: str | None = option(None, "--username", "broker user (overrides the URL's)")
    password: str | None = option(None, "--password", "broker password (overrides the URL's)")
    cameras: int = option(0, "--cameras", "simulated cameras")
    fps: float = option(1.0, "--fps", "frames/s per camera")
    breach_ratio: float = option(
        0.01, "--breach-ratio", "share of readings inside a breach episode (0 for none)"
    )
    seed: int | None = option(None, "--seed", "make the values reproducible")
    inflight: int = option(1000, "--inflight", "unacknowledged messages at most (QoS > 0)")
    id_prefix: str = option(
        "", "--id-prefix", "prepended to every device id, to run several fleets on one broker"
    )
    client_id: str | None = option(
        None, "--client-id", "MQTT client id (default offsite-sim-<random>)"
    )
    utc_offset_h: float = option(
        8.0, "--utc-offset", "hours; local time of the daily cycles (China Standard Time)"
    )
    drain_timeout_s: float = option(
        30.0, None, "how long to wait for the last acknowledgements, and for `offline` at a stop"
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise SimConfigError(_describe(err)) from None

    @model_validator(mode="after")
    def _check(self) -> SimConfig:
        rules: list[tuple[bool, str]] = [
            (self.devices >= 0, f"--devices must be 0 or more, got {self.devices}"),
            (self.devices + self.cameras > 0, "--devices and --cameras are both 0"),
            (self.rate > 0, f"--rate must be above 0 messages/s, got {self.rate}"),
            (self.duration_s >= 0, f"--duration must be 0 (no end) or more, got {self.duration_s}"),
            (
                1 <= self.batch <= MAX_BATCH,
                f"--batch must be 1..{MAX_BATCH} readings per message, got {self.batch}",
            ),
            (self.qos in (0, 1, 2), f"--qos must be 0, 1 or 2, got {self.qos}"),
            (self.cameras >= 0, f"--cameras must be 0 or more, got {self.cameras}"),
            (0 < self.fps <= 30, f"--fps must be above 0 and at most 30, got {self.fps}"),
            (
                0 <= self.breach_ratio < 1,
                f"--breach-ratio must be at least 0 and below 1, got {self.breach_ratio}",
            ),
            (
                1 <= self.inflight <= MAX_INFLIGHT,
                f"--inflight must be 1..{MAX_INFLIGHT} (paho's limit), got {self.inflight}",
            ),
            (
                bool(_ID_PREFIX.fullmatch(self.id_prefix)),
                f"--id-prefix must match {_ID_PREFIX.pattern}, got {self.id_prefix!r}",
            ),
            (self.drain_timeout_s >= 0, "drain_timeout_s must be 0 or more"),
        ]
        if self.devices > 0:
            per_device = self.rate * self.batch / self.devices
            rules.append(
                (
                    per_device <= MAX_READINGS_PER_DEVICE_S,
                    f"--rate × --batch / --devices is {per_device:.0f} readings/s per device; "
                    f"at most {MAX_READINGS_PER_DEVICE_S} keep timestamps unique to the "
                    "millisecond (add devices)",
                )
            )
        if self.client_id is not None:
            rules.append(
                (
                    bool(DEVICE_ID.fullmatch(self.client_id)),
                    f"client id {self.client_id!r} must match {DEVICE_ID.pattern} "
                    "(its status topic is a device topic)",
                )
            )
        for ok, message in rules:
            if not ok:
                raise ValueError(message)
        try:
            BrokerAddress(self.broker_url)
        except ValueError as err:
            raise ValueError(f"--broker: {err}") from err
        return self

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with `changes`, validated like any other config."""
        return SimConfig(**{**self.model_dump(), **changes})

    @property
    def planned_messages(self) -> int | None:
        return round(self.rate * self.duration_s) if self.duration_s > 0 else None

    @property
    def planned_frames(self) -> int | None:
        if self.duration_s <= 0:
            return None
        return round(self.cameras * self.fps * self.duration_s)


def _describe(err: ValidationError) -> str:
    """The first problem, in the words of the option it concerns."""
    first = err.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "value_error" or not first["loc"]:
        return message
    name = str(first["loc"][0])
    field = flag_of(name) if name in SimConfig.model_fields else name
    return f"{field}: {message} (got {first.get('input')!r})"
