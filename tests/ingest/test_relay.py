"""The relay's payload is telemetry the engine's codec reads back into the same readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.codec import Limits, decode_telemetry
from ingest.models import Reading
from ingest.relay import relay_payload
from ingest.topics import relay_topic, relayed_device

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
LIMITS = Limits(1 << 20, timedelta(minutes=5), timedelta(days=30))


def test_relayed_readings_decode_to_themselves_with_their_flags() -> None:
    mn = "88888880000001"
    readings = [
        Reading(NOW - timedelta(minutes=1), mn, "w01018", 88.5, "C"),
        Reading(NOW - timedelta(minutes=1), mn, "w21003", 2.5),
        Reading(NOW, mn, "w01018.avg_minute", 40.0),
        Reading(NOW, mn, "w01018.sample_time", (NOW - timedelta(minutes=3)).timestamp(), "M"),
    ]
    decoded = decode_telemetry(mn, relay_payload(readings), LIMITS, NOW)
    assert decoded.rejections == ()
    assert sorted(decoded.readings) == sorted(readings)


def test_only_relay_topics_name_a_relayed_device() -> None:
    assert relayed_device(relay_topic("mn-1")) == ("mn-1", False)
    assert relayed_device(relay_topic("mn-1", resent=True)) == ("mn-1", True)
    assert relayed_device("offsite/v1/devices/mn-1/telemetry") is None
    assert relayed_device("offsite/v1/relay/mn-1/status") is None
    assert relayed_device("offsite/v1/relay/bad id/telemetry") is None
    assert relayed_device("offsite/v1/relay/mn-1/telemetry/extra") is None
