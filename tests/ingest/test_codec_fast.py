"""The codec's fast path for plain entries decides exactly as the full checks do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from ingest import codec
from ingest.codec import Limits, decode_telemetry
from ingest.models import Reading, Rejection

NOW = datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=UTC)
LIMITS = Limits(
    max_payload_bytes=1 << 20, max_future=timedelta(minutes=5), retention=timedelta(days=30)
)
NOW_MS = int(NOW.timestamp() * 1000)
EARLIEST_MS = int((NOW - LIMITS.retention).timestamp() * 1000)
LATEST_MS = int((NOW + LIMITS.max_future).timestamp() * 1000)

# Entries on and beside every edge the fast path tests: the time bounds to the millisecond,
# value types (int, float, bool, string, null), names seen and not yet seen, extra keys.
ENTRIES = [
    {"ts": NOW_MS, "values": {"pm25": 12.5, "pm10": 30}},
    {"ts": EARLIEST_MS, "values": {"pm25": 1.0}},
    {"ts": EARLIEST_MS + 1, "values": {"pm25": 1.0}},
    {"ts": EARLIEST_MS - 1, "values": {"pm25": 1.0}},
    {"ts": LATEST_MS, "values": {"pm25": 1.0}},
    {"ts": LATEST_MS + 1, "values": {"pm25": 1.0}},
    {"ts": LATEST_MS - 1, "values": {"pm25": 1.0}},
    {"ts": NOW_MS, "values": {"door": True, "pm25": 2.0}},
    {"ts": NOW_MS, "values": {"pm25": "high"}},
    {"ts": NOW_MS, "values": {"pm25": None}},
    {"ts": NOW_MS, "values": {}},
    {"ts": NOW_MS, "values": {"not a name!": 1.0}},
    {"ts": NOW_MS, "values": {"first_seen_here_metric": 3.0}},
    {"ts": float(NOW_MS), "values": {"pm25": 4.0}},
    {"ts": "2026-11-26T08:00:00Z", "values": {"pm25": 5.0}},
    {"ts": NOW_MS, "values": {"cod": 6.0}, "flags": {"cod": "M"}},
    {"ts": NOW_MS, "values": {"pm25": 7.0}, "extra": 1},
    {"ts": NOW_MS, "values": [1, 2]},
    {"pm25": 8.0, "pm10": 9.0},
    [1, 2],
]


def full_checks(entries: list[object]) -> tuple[tuple[Reading, ...], tuple[Rejection, ...]]:
    """Every entry through the full checks alone (what the decoder did before its fast path)."""
    out: list[Reading] = []
    bad: list[Rejection] = []
    for i, entry in enumerate(entries):
        codec._entry("dev-1", entry, f"[{i}]", NOW, LIMITS, out, bad)
    return tuple(out), tuple(bad)


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_each_entry_decides_as_the_full_checks(index: int) -> None:
    entries = [ENTRIES[index]]
    decoded = decode_telemetry("dev-1", orjson.dumps(entries), LIMITS, NOW)
    assert (decoded.readings, decoded.rejections) == full_checks(entries)


def test_a_mixed_batch_keeps_the_order_and_the_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    readings, rejections = full_checks(ENTRIES)  # also teaches the codec the good names
    checked: list[object] = []
    full = codec._entry

    def counting(device_id: str, entry: object, *rest: Any) -> None:
        checked.append(entry)
        full(device_id, entry, *rest)

    monkeypatch.setattr(codec, "_entry", counting)
    decoded = decode_telemetry("dev-1", orjson.dumps(ENTRIES), LIMITS, NOW)
    # The plain entries strictly inside the bounds never reached the full checks: now,
    # earliest + 1 ms, latest and latest - 1 ms (the bounds carry 0.456 ms beyond the
    # millisecond), and the name first seen by the full checks above.
    assert len(ENTRIES) - len(checked) == 5
    assert decoded.readings == readings
    assert decoded.rejections == rejections
    assert len(readings) >= 10  # both the fast and the full path were exercised
    assert len(rejections) >= 8


def test_a_plain_value_object_that_turns_bad_midway_leaves_no_partial_readings() -> None:
    entry = {"ts": NOW_MS, "values": {"pm25": 1.0, "pm10": 2.0, "so2": "broken"}}
    decoded = decode_telemetry("dev-1", orjson.dumps([entry]), LIMITS, NOW)
    assert [r.metric for r in decoded.readings] == ["pm25", "pm10"]
    assert [r.reason.value for r in decoded.rejections] == ["non_numeric"]
