"""Telemetry payload codec: JSON in the ThingsBoard shapes to readings, or named rejections."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.models import FLAGS, DecodedTelemetry, Reading, Rejection, RejectReason

METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
# Metric names repeat endlessly; remembering the good ones skips the regex per reading.
_GOOD_METRICS: set[str] = set()
_GOOD_METRICS_MAX = 100_000


def _good_metric(name: str) -> bool:
    if not METRIC_NAME.fullmatch(name):
        return False
    if len(_GOOD_METRICS) < _GOOD_METRICS_MAX:
        _GOOD_METRICS.add(name)
    return True


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds a payload is checked against; `now` is passed in, never read here."""

    max_payload_bytes: int
    max_future: timedelta
    retention: timedelta
    # The two windows in milliseconds, worked out once: the common entry is checked in them.
    max_future_ms: float = field(init=False)
    retention_ms: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_future_ms", self.max_future.total_seconds() * 1000)
        object.__setattr__(self, "retention_ms", self.retention.total_seconds() * 1000)


def _reject(reason: RejectReason, detail: str) -> DecodedTelemetry:
    return DecodedTelemetry((), (Rejection(reason, detail),))


def _parse_ts(raw: Any, where: str) -> datetime | Rejection:
    if isinstance(raw, bool):
        return Rejection(RejectReason.BAD_TS, f"{where}.ts must be epoch milliseconds or ISO-8601")
    if isinstance(raw, int | float):
        if not math.isfinite(raw):
            return Rejection(RejectReason.BAD_TS, f"{where}.ts must be a finite number")
        try:
            # fromtimestamp is twice as fast as epoch + timedelta on this hot path.
            return datetime.fromtimestamp(raw / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return Rejection(RejectReason.BAD_TS, f"{where}.ts={raw} is out of range")
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return Rejection(
                RejectReason.BAD_TS, f"{where}.ts={raw!r} is not an ISO-8601 timestamp"
            )
        if parsed.tzinfo is None:
            return Rejection(
                RejectReason.BAD_TS,
                f"{where}.ts={raw!r} has no UTC offset (add Z or +08:00)",
            )
        return parsed.astimezone(UTC)
    return Rejection(
        RejectReason.BAD_TS,
        f"{where}.ts must be epoch milliseconds or an ISO-8601 string, got {type(raw).__name__}",
    )


_NO_FLAGS: dict[str, Any] = {}


def _flags(
    raw: Any, values: dict[str, Any], where: str, bad: list[Rejection]
) -> dict[str, Any] | None:
    """The entry's `flags` object, or None when it is malformed: then the whole entry is
    refused, since storing its values as N would make data the device marked invalid valid.
    A bad letter refuses only that metric's value (in `_values`)."""
    if raw is None:
        return _NO_FLAGS
    if not isinstance(raw, dict):
        bad.append(
            Rejection(
                RejectReason.WRONG_SHAPE,
                f'{where}.flags must be an object like {{"cod": "M"}}, got {type(raw).__name__}',
            )
        )
        return None
    for metric in raw:
        if metric not in values:
            bad.append(
                Rejection(
                    RejectReason.BAD_FLAG,
                    f"{where}.flags.{metric[:80]} names a metric that is not in values",
                )
            )
    return raw


def _values(
    device_id: str,
    values: dict[str, Any],
    ts: datetime,
    where: str,
    out: list[Reading],
    bad: list[Rejection],
    flags: dict[str, Any] = _NO_FLAGS,
) -> None:
    if not values:
        bad.append(Rejection(RejectReason.EMPTY, f"{where} has no values"))
        return
    for metric, raw in values.items():
        if metric not in _GOOD_METRICS and not _good_metric(metric):
            bad.append(
                Rejection(
                    RejectReason.BAD_METRIC,
                    f"{where}: metric name {metric[:80]!r} must match {METRIC_NAME.pattern}",
                )
            )
            continue
        if isinstance(raw, bool):
            value = 1.0 if raw else 0.0
        elif isinstance(raw, int | float):
            value = float(raw)
            if not math.isfinite(value):
                bad.append(
                    Rejection(
                        RejectReason.NOT_FINITE, f"{where}.{metric} must be finite, got {raw}"
                    )
                )
                continue
        else:
            shown = repr(raw)[:40]
            bad.append(
                Rejection(
                    RejectReason.NON_NUMERIC,
                    f"{where}.{metric} must be a number or boolean, got {shown}",
                )
            )
            continue
        flag = flags.get(metric, "N") if flags else "N"
        if flag not in FLAGS:
            shown = repr(flag)[:20]
            bad.append(
                Rejection(
                    RejectReason.BAD_FLAG,
                    f"{where}.flags.{metric} must be one of N, F, M, S, D, C, T, B, got {shown}",
                )
            )
            continue
        out.append(Reading(ts, device_id, metric, value, flag))


def decode_telemetry(
    device_id: str, payload: bytes, limits: Limits, now: datetime
) -> DecodedTelemetry:
    """Decode one telemetry message. Good entries are kept even when others are refused."""
    if len(payload) > limits.max_payload_bytes:
        return _reject(
            RejectReason.TOO_LARGE,
            f"payload is {len(payload)} bytes, limit is {limits.max_payload_bytes}",
        )
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        # orjson refuses NaN and Infinity literals, which is what we want; say so plainly.
        text = payload[:200].decode("utf-8", "replace")
        if re.search(r"\b(NaN|-?Infinity)\b", text):
            return _reject(RejectReason.NOT_FINITE, "payload contains NaN or Infinity")
        if "infinity when parsed" in str(err):
            return _reject(RejectReason.NOT_FINITE, f"a number must be finite: {err}")
        return _reject(RejectReason.NOT_JSON, f"payload is not JSON: {err}")

    if isinstance(doc, list):
        if not doc:
            return _reject(RejectReason.EMPTY, "batch is an empty list")
        entries: list[Any] = doc
        batch = True
    elif isinstance(doc, dict):
        entries = [doc]
        batch = False
    else:
        return _reject(
            RejectReason.WRONG_SHAPE,
            f"payload must be an object or a list of objects, got {type(doc).__name__}",
        )

    # The bounds in epoch milliseconds, for the common entry: an integer `ts` strictly inside
    # them needs no datetime compared (one on a bound, or any other, takes the full checks).
    now_ms = now.timestamp() * 1000
    earliest_ms = now_ms - limits.retention_ms
    latest_ms = now_ms + limits.max_future_ms
    out: list[Reading] = []
    bad: list[Rejection] = []
    for i, entry in enumerate(entries):
        if (
            type(entry) is dict
            and len(entry) == 2
            and type(raw_ts := entry.get("ts")) is int
            and type(values := entry.get("values")) is dict
            and earliest_ms < raw_ts < latest_ms
            and _plain_values(device_id, values, datetime.fromtimestamp(raw_ts / 1000, UTC), out)
        ):
            continue
        # Anything else takes the full checks, which name what is wrong and where.
        where = f"[{i}]" if batch else "payload"
        _entry(device_id, entry, where, now, limits, out, bad)
    return DecodedTelemetry(tuple(out), tuple(bad))


def _plain_values(device_id: str, values: dict[str, Any], ts: datetime, out: list[Reading]) -> bool:
    """Append the readings of a `values` object whose every metric name is known good and
    every value a plain finite number; False (nothing appended) for anything else."""
    start = len(out)
    for metric, raw in values.items():
        kind = type(raw)
        if metric in _GOOD_METRICS and (
            kind is int or (kind is float and raw - raw == 0.0)  # finite: inf - inf is nan
        ):
            out.append(Reading(ts, device_id, metric, float(raw)))
        else:
            del out[start:]
            return False
    return len(out) > start


def _entry(
    device_id: str,
    entry: Any,
    where: str,
    now: datetime,
    limits: Limits,
    out: list[Reading],
    bad: list[Rejection],
) -> None:
    """One entry of a payload, every rule checked: its readings to `out`, its faults to `bad`."""
    if not isinstance(entry, dict):
        bad.append(
            Rejection(
                RejectReason.WRONG_SHAPE,
                f"{where} must be an object, got {type(entry).__name__}",
            )
        )
        return
    flags: dict[str, Any] = _NO_FLAGS
    if "values" in entry or "ts" in entry:
        extra = set(entry) - {"ts", "values", "flags"}
        if extra or "values" not in entry or "ts" not in entry:
            bad.append(
                Rejection(
                    RejectReason.WRONG_SHAPE,
                    f'{where} must be {{"ts": ..., "values": {{...}}}} exactly'
                    ' (with "flags": {...} optional)'
                    + (f"; unexpected keys {sorted(extra)[:5]}" if extra else ""),
                )
            )
            return
        values = entry["values"]
        if not isinstance(values, dict):
            bad.append(
                Rejection(
                    RejectReason.WRONG_SHAPE,
                    f"{where}.values must be an object, got {type(values).__name__}",
                )
            )
            return
        ts = _parse_ts(entry["ts"], where)
        if isinstance(ts, Rejection):
            bad.append(ts)
            return
        if ts > now + limits.max_future:
            bad.append(
                Rejection(
                    RejectReason.FUTURE_TS,
                    f"{where}.ts={ts.isoformat()} is more than "
                    f"{int(limits.max_future.total_seconds())}s ahead of server time",
                )
            )
            return
        if ts < now - limits.retention:
            bad.append(
                Rejection(
                    RejectReason.TOO_OLD,
                    f"{where}.ts={ts.isoformat()} is older than the retention window "
                    f"({limits.retention.days} days)",
                )
            )
            return
        checked = _flags(entry.get("flags"), values, where, bad)
        if checked is None:
            return
        flags = checked
    else:
        values, ts = entry, now
    _values(device_id, values, ts, where, out, bad, flags)


def decode_status(payload: bytes) -> bool | None:
    """`online` / `offline` (case-insensitive, whitespace ignored); None if neither."""
    word = payload.strip().lower()
    if word == b"online":
        return True
    if word == b"offline":
        return False
    return None
