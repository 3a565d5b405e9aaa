"""Payload contract, table-driven: every accepted shape and every rejection reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.codec import Limits, decode_status, decode_telemetry
from ingest.models import RejectReason
from ingest.topics import Channel, TopicError, parse_topic, subscription

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
LIMITS = Limits(
    max_payload_bytes=1024, max_future=timedelta(minutes=5), retention=timedelta(days=30)
)


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


GOOD = [
    pytest.param(
        f'{{"ts": {NOW_MS}, "values": {{"pm25": 35.2}}}}',
        [(at(NOW_MS), "pm25", 35.2)],
        id="single-object-epoch-ms",
    ),
    pytest.param(
        '{"ts": "2026-11-26T16:00:00+08:00", "values": {"pm25": 1, "pm10": 2.5}}',
        [(NOW, "pm25", 1.0), (NOW, "pm10", 2.5)],
        id="iso-with-offset",
    ),
    pytest.param(
        '{"ts": "2026-11-26T08:00:00Z", "values": {"door_open": true, "pump": false}}',
        [(NOW, "door_open", 1.0), (NOW, "pump", 0.0)],
        id="booleans",
    ),
    pytest.param(
        f'[{{"ts": {NOW_MS - 1000}, "values": {{"cod": 40}}}},'
        f' {{"ts": {NOW_MS}, "values": {{"cod": 41}}}}]',
        [(at(NOW_MS - 1000), "cod", 40.0), (at(NOW_MS), "cod", 41.0)],
        id="batch-list",
    ),
    pytest.param('{"pm25": 35.2}', [(NOW, "pm25", 35.2)], id="bare-map-server-time"),
    pytest.param(
        f'{{"ts": {NOW_MS + 299_000}, "values": {{"x": -1e10}}}}',
        [(at(NOW_MS + 299_000), "x", -1e10)],
        id="just-inside-future-limit",
    ),
    pytest.param('{"a.b-c_d": 1}', [(NOW, "a.b-c_d", 1.0)], id="metric-name-punctuation"),
]


@pytest.mark.parametrize(("payload", "expected"), GOOD)
def test_accepted_shapes(payload: str, expected: list[tuple[datetime, str, float]]) -> None:
    out = decode_telemetry("dev-1", payload.encode(), LIMITS, NOW)
    assert out.rejections == ()
    assert [(r.time, r.metric, r.value) for r in out.readings] == expected
    assert all(r.device_id == "dev-1" for r in out.readings)


BAD = [
    pytest.param(b"{not json", RejectReason.NOT_JSON, "not JSON", id="not-json"),
    pytest.param(b"\xff\xfe", RejectReason.NOT_JSON, "not JSON", id="binary"),
    pytest.param(b"42", RejectReason.WRONG_SHAPE, "object or a list", id="scalar"),
    pytest.param(b'"text"', RejectReason.WRONG_SHAPE, "object or a list", id="string"),
    pytest.param(b"[]", RejectReason.EMPTY, "empty list", id="empty-list"),
    pytest.param(b"{}", RejectReason.EMPTY, "no values", id="empty-object"),
    pytest.param(b"[1]", RejectReason.WRONG_SHAPE, "[0] must be an object", id="list-of-scalars"),
    pytest.param(b'{"ts": 1}', RejectReason.WRONG_SHAPE, '"values"', id="ts-without-values"),
    pytest.param(
        f'{{"ts": {NOW_MS}, "values": {{"a": 1}}, "extra": 1}}'.encode(),
        RejectReason.WRONG_SHAPE,
        "unexpected keys ['extra']",
        id="extra-key",
    ),
    pytest.param(
        f'{{"ts": {NOW_MS}, "values": [1]}}'.encode(),
        RejectReason.WRONG_SHAPE,
        "values must be an object",
        id="values-not-object",
    ),
    pytest.param(b'{"pm25": "35.2"}', RejectReason.NON_NUMERIC, "payload.pm25", id="string-value"),
    pytest.param(b'{"pm25": null}', RejectReason.NON_NUMERIC, "payload.pm25", id="null-value"),
    pytest.param(b'{"pm25": {"v": 1}}', RejectReason.NON_NUMERIC, "payload.pm25", id="nested"),
    pytest.param(b'{"pm25": NaN}', RejectReason.NOT_FINITE, "NaN or Infinity", id="nan"),
    pytest.param(b'{"pm25": Infinity}', RejectReason.NOT_FINITE, "NaN or Infinity", id="inf"),
    pytest.param(b'{"pm25": 1e999}', RejectReason.NOT_FINITE, "must be finite", id="overflow"),
    pytest.param(b'{"pm 25": 1}', RejectReason.BAD_METRIC, "'pm 25'", id="metric-space"),
    pytest.param(b'{"9lives": 1}', RejectReason.BAD_METRIC, "'9lives'", id="metric-digit-first"),
    pytest.param(
        ('{"' + "m" * 65 + '": 1}').encode(),
        RejectReason.BAD_METRIC,
        "must match",
        id="metric-long",
    ),
    pytest.param(
        b'{"ts": "yesterday", "values": {"a": 1}}', RejectReason.BAD_TS, "ISO-8601", id="ts-words"
    ),
    pytest.param(
        b'{"ts": "2026-11-26T08:00:00", "values": {"a": 1}}',
        RejectReason.BAD_TS,
        "no UTC offset",
        id="ts-naive",
    ),
    pytest.param(b'{"ts": true, "values": {"a": 1}}', RejectReason.BAD_TS, "ts must", id="ts-bool"),
    pytest.param(b'{"ts": [1], "values": {"a": 1}}', RejectReason.BAD_TS, "list", id="ts-list"),
    pytest.param(
        f'{{"ts": {NOW_MS + 301_000}, "values": {{"a": 1}}}}'.encode(),
        RejectReason.FUTURE_TS,
        "ahead of server time",
        id="ts-future",
    ),
    pytest.param(
        f'{{"ts": {NOW_MS - 31 * 86_400_000}, "values": {{"a": 1}}}}'.encode(),
        RejectReason.TOO_OLD,
        "retention window",
        id="ts-too-old",
    ),
    pytest.param(
        b'{"a": "' + b"x" * 2000 + b'"}', RejectReason.TOO_LARGE, "limit is 1024", id="too-large"
    ),
]


@pytest.mark.parametrize(("payload", "reason", "detail"), BAD)
def test_rejections_name_field_and_rule(payload: bytes, reason: RejectReason, detail: str) -> None:
    out = decode_telemetry("dev-1", payload, LIMITS, NOW)
    assert out.readings == ()
    assert [r.reason for r in out.rejections] == [reason]
    assert detail in out.rejections[0].detail


def test_batch_keeps_good_entries_and_names_bad_ones() -> None:
    payload = (
        f'[{{"ts": {NOW_MS}, "values": {{"cod": 41, "nh3n": "high"}}}},'
        f' {{"ts": "soon", "values": {{"cod": 1}}}},'
        f' {{"ts": {NOW_MS - 1000}, "values": {{"cod": 40}}}}]'
    ).encode()
    out = decode_telemetry("ww-1", payload, LIMITS, NOW)
    assert [(r.metric, r.value) for r in out.readings] == [("cod", 41.0), ("cod", 40.0)]
    assert [r.reason for r in out.rejections] == [RejectReason.NON_NUMERIC, RejectReason.BAD_TS]
    assert "[0].nh3n" in out.rejections[0].detail
    assert "[1].ts" in out.rejections[1].detail


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"online", True), (b"OFFLINE\n", False), (b" online ", True), (b"on", None), (b"", None)],
)
def test_status_payloads(payload: bytes, expected: bool | None) -> None:
    assert decode_status(payload) is expected


@pytest.mark.parametrize(
    ("topic", "device", "channel"),
    [
        ("offsite/v1/devices/aq-0001/telemetry", "aq-0001", Channel.TELEMETRY),
        ("offsite/v1/devices/cam.gate_2/frames", "cam.gate_2", Channel.FRAMES),
        ("offsite/v1/devices/x/status", "x", Channel.STATUS),
    ],
)
def test_topics(topic: str, device: str, channel: Channel) -> None:
    parsed = parse_topic(topic)
    assert (parsed.device_id, parsed.channel) == (device, channel)


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("other/v1/devices/x/telemetry", "is not under"),
        ("offsite/v1/devices/x/telemetry/extra", "must be"),
        ("offsite/v1/devices/bad id/telemetry", "must match"),
        ("offsite/v1/devices/" + "d" * 65 + "/telemetry", "must match"),
        ("offsite/v1/devices/x/commands", "is not one of"),
    ],
)
def test_bad_topics(topic: str, message: str) -> None:
    with pytest.raises(TopicError, match=message):
        parse_topic(topic)


def test_shared_subscription() -> None:
    assert subscription(None) == "offsite/v1/devices/#"
    assert subscription("ingest") == "$share/ingest/offsite/v1/devices/#"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            f'{{"ts": {NOW_MS}, "values": {{"cod": 80, "nh3n": 2}}, "flags": {{"cod": "C"}}}}',
            [("cod", 80.0, "C"), ("nh3n", 2.0, "N")],
            id="flag-beside-values-absent-means-N",
        ),
        pytest.param(
            f'[{{"ts": {NOW_MS}, "values": {{"cod": 1}}, "flags": {{}}}}]',
            [("cod", 1.0, "N")],
            id="empty-flags",
        ),
        pytest.param('{"cod": 1}', [("cod", 1.0, "N")], id="bare-object-is-N"),
    ],
)
def test_flags_are_kept(payload: str, expected: list[tuple[str, float, str]]) -> None:
    out = decode_telemetry("dev-1", payload.encode(), LIMITS, NOW)
    assert out.rejections == ()
    assert [(r.metric, r.value, r.flag) for r in out.readings] == expected


@pytest.mark.parametrize(
    ("payload", "reason", "detail", "kept"),
    [
        pytest.param(
            f'{{"ts": {NOW_MS}, "values": {{"cod": 80, "ph": 7}}, "flags": {{"cod": "X"}}}}',
            RejectReason.BAD_FLAG,
            "payload.flags.cod must be one of N, F, M, S, D, C, T, B, got 'X'",
            ["ph"],
            id="unknown-letter-refuses-that-value-only",
        ),
        pytest.param(
            f'{{"ts": {NOW_MS}, "values": {{"cod": 80}}, "flags": {{"cod": "n"}}}}',
            RejectReason.BAD_FLAG,
            "payload.flags.cod must be one of N, F, M, S, D, C, T, B, got 'n'",
            [],
            id="lower-case",
        ),
        pytest.param(
            f'{{"ts": {NOW_MS}, "values": {{"cod": 80}}, "flags": {{"tp": "M"}}}}',
            RejectReason.BAD_FLAG,
            "payload.flags.tp names a metric that is not in values",
            ["cod"],
            id="flag-without-value",
        ),
        pytest.param(
            f'{{"ts": {NOW_MS}, "values": {{"cod": 80}}, "flags": "M"}}',
            RejectReason.WRONG_SHAPE,
            'payload.flags must be an object like {"cod": "M"}, got str',
            [],
            id="flags-not-an-object-refuses-the-entry",
        ),
    ],
)
def test_bad_flags_are_named(
    payload: str, reason: RejectReason, detail: str, kept: list[str]
) -> None:
    out = decode_telemetry("dev-1", payload.encode(), LIMITS, NOW)
    assert [(r.reason, r.detail) for r in out.rejections] == [(reason, detail)]
    assert [r.metric for r in out.readings] == kept
