"""The contract: an HJ 212 data upload (CN 2011/2051/2061/2031) as typed readings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from hj212.codes import CodeTables
from hj212.packet import Packet, cp_fields
from ingest.codec import METRIC_NAME, Limits
from ingest.models import FLAGS, Reading, Rejection, RejectReason

# Value suffixes of history uploads and the metric part they become.
_HISTORY = {"Avg": "avg", "Min": "min", "Max": "max", "Cou": "cou"}
# Converted (折算) values: flue-gas limits are judged on them.
_HISTORY_ZS = {"ZsAvg": "zs_avg", "ZsMin": "zs_min", "ZsMax": "zs_max"}
# Suffixes that carry no value of their own (equipment flag, the flag itself, sample time).
_NOT_VALUES = frozenset({"Flag", "EFlag", "SampleTime"})


@dataclass(frozen=True, slots=True)
class Converted:
    readings: tuple[Reading, ...]
    rejections: tuple[Rejection, ...]


def parse_time(text: str, zone: tzinfo) -> datetime | None:
    """`YYYYMMDDhhmmss`, optionally with milliseconds (`zzz`), in the configured zone."""
    if len(text) not in (14, 17) or not text.isdigit():
        return None
    try:
        local = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            int(text[14:17] or 0) * 1000,
            tzinfo=zone,
        )
    except ValueError:
        return None
    return local.astimezone(UTC)


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def to_readings(
    p: Packet, kind: str, zone: tzinfo, tables: CodeTables, limits: Limits, now: datetime
) -> Converted:
    """Readings of one data upload; `kind` is rtd, minute, hour or day (from the CN table)."""
    fields = cp_fields(p.cp)
    bad: list[Rejection] = []
    raw_time = fields.get("DataTime")
    if raw_time is None:
        return Converted((), (Rejection(RejectReason.BAD_TS, "the packet has no DataTime"),))
    ts = parse_time(raw_time, zone)
    if ts is None:
        return Converted(
            (),
            (
                Rejection(
                    RejectReason.BAD_TS,
                    f"DataTime={raw_time[:20]!r} must be YYYYMMDDhhmmss (optionally with zzz)",
                ),
            ),
        )
    if ts > now + limits.max_future:
        return Converted(
            (),
            (
                Rejection(
                    RejectReason.FUTURE_TS,
                    f"DataTime={raw_time} is more than {int(limits.max_future.total_seconds())}s"
                    f" ahead of server time (zone {zone})",
                ),
            ),
        )
    if ts < now - limits.retention:
        return Converted(
            (),
            (
                Rejection(
                    RejectReason.TOO_OLD,
                    f"DataTime={raw_time} is older than the retention window"
                    f" ({limits.retention.days} days)",
                ),
            ),
        )
    out: list[Reading] = []
    refused_flags: set[str] = set()
    for key, raw in fields.items():
        code, dash, suffix = key.rpartition("-")
        if not dash or not code or suffix in _NOT_VALUES:
            continue
        if kind == "rtd":
            if suffix == "Rtd":
                part = ""
            elif suffix == "ZsRtd":
                part = ".zs"
            else:
                continue
        elif suffix in _HISTORY:
            part = f".{_HISTORY[suffix]}_{kind}"
        elif suffix in _HISTORY_ZS:
            part = f".{_HISTORY_ZS[suffix]}_{kind}"
        else:
            continue
        base = tables.metric_code(code)
        metric = base + part
        if not METRIC_NAME.fullmatch(metric):
            bad.append(
                Rejection(
                    RejectReason.BAD_METRIC,
                    f"{key}: metric {metric[:80]!r} must match {METRIC_NAME.pattern}",
                )
            )
            continue
        flag = fields.get(f"{code}-Flag", "N")
        if flag not in FLAGS:
            if code not in refused_flags:
                refused_flags.add(code)
                bad.append(
                    Rejection(
                        RejectReason.BAD_FLAG,
                        f"{code}-Flag={flag[:10]!r} must be one of N, F, M, S, D, C, T, B;"
                        f" the values of {code} were not stored",
                    )
                )
            continue
        value = _number(raw)
        if value is None:
            bad.append(
                Rejection(RejectReason.NON_NUMERIC, f"{key}={raw[:30]!r} must be a finite number")
            )
            continue
        out.append(Reading(ts, p.mn, metric, value, flag))
        if part == "" and (sample := fields.get(f"{code}-SampleTime")) is not None:
            # Analysers sample in cycles: the sample time tells a repeated sample from a
            # frozen sensor. Kept as epoch seconds beside the value.
            sampled = parse_time(sample, zone)
            if sampled is None:
                bad.append(
                    Rejection(
                        RejectReason.BAD_TS,
                        f"{code}-SampleTime={sample[:20]!r} must be YYYYMMDDhhmmss",
                    )
                )
            else:
                out.append(Reading(ts, p.mn, f"{base}.sample_time", sampled.timestamp(), flag))
    if not out and not bad:
        bad.append(Rejection(RejectReason.EMPTY, f"CN={p.cn} packet carries no values"))
    return Converted(tuple(out), tuple(bad))
