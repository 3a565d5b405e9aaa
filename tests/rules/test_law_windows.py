"""Dated limits (standards' transition periods), hourly-mean validity and sample-time flatlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hj212.codes import tables
from hj212.convert import to_readings
from hj212.packet import decode_packet, encode
from ingest.codec import Limits
from ingest.models import Reading
from rules.engine import ClueOp, Engine
from rules.loader import RuleLoadError, load_directory
from rules.settings import RulesSettings
from tests.rules.support import DEPARTMENTS, MemoryDirectory, device, rule
from tests.rules.test_sample_pack import PACK

CREDIT = RulesSettings().credit
SHANGHAI_MIDNIGHT = timedelta(hours=-8)  # local midnight of a day, in UTC


def pm25_daily(**kw: Any) -> dict[str, Any]:
    return {
        "kind": "window",
        "selector": {"metric": "pm25"},
        "agg": "avg",
        "align": "day",
        "expected_interval": "1m",
        "validity": {"hours": 20, "minutes_per_hour": 45},
        "op": ">",
        "limit": [
            {"value": 60, "valid_until": "2030-12-31"},
            {"value": 50, "valid_from": "2031-01-01"},
        ],
        **kw,
    }


def day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC) + SHANGHAI_MIDNIGHT


def minute_day(
    day: str, value: float, hours: int = 24, minutes: int = 60, metric: str = "pm25"
) -> list[Reading]:
    """Minute readings of one local day: `minutes` per hour in the first `hours` hours, plus
    one reading of the next day that closes it."""
    t0 = day_start(day)
    out = [
        Reading(t0 + timedelta(hours=h, minutes=m), "st1", metric, value)
        for h in range(hours)
        for m in range(minutes)
    ]
    return [*out, Reading(t0 + timedelta(days=1, minutes=1), "st1", metric, value)]


def run(fields: dict[str, Any], readings: list[Reading]) -> list[ClueOp]:
    engine = Engine([rule(**fields)], MemoryDirectory(), CREDIT, 0)
    return engine.on_readings(readings)


@pytest.mark.parametrize(
    ("day", "opens"),
    [
        ("2026-12-01", False),  # transition period: limit 60
        ("2030-12-31", False),  # its last day
        ("2031-01-01", True),  # first day of the final limit 50
        ("2031-01-05", True),
    ],
)
def test_the_same_daily_mean_is_judged_by_the_limit_in_force_that_day(
    day: str, opens: bool
) -> None:
    ops = run(pm25_daily(), minute_day(day, 55.0))
    assert [o.action for o in ops] == (["open"] if opens else [])
    if opens:
        assert ops[0].started_at == day_start(day).timestamp()
        assert ops[0].trigger[0].value == pytest.approx(55.0)


def test_a_date_outside_every_dated_limit_decides_nothing() -> None:
    fields = pm25_daily(limit=[{"value": 50, "valid_from": "2031-01-01"}])
    assert run(fields, minute_day("2026-12-01", 500.0)) == []


def test_dated_threshold_limits_use_the_reading_date() -> None:
    fields = {
        "kind": "threshold",
        "selector": {"metric": "x"},
        "op": ">",
        "limit": [
            {"value": 60, "valid_until": "2030-12-31"},
            {"value": 50, "valid_from": "2031-01-01"},
        ],
    }
    before = Reading(day_start("2030-12-31") + timedelta(hours=23, minutes=59), "d", "x", 55)
    after = Reading(day_start("2031-01-01"), "d", "x", 55)
    assert run(fields, [before]) == []
    assert [o.action for o in run(fields, [after])] == ["open"]


@pytest.mark.parametrize(
    ("limit", "reason"),
    [
        (
            [{"value": 60, "valid_until": "2031-01-01"}, {"value": 50, "valid_from": "2031-01-01"}],
            "overlap",
        ),
        ([{"value": 60}, {"value": 50, "valid_from": "2031-01-01"}], "overlap"),
        ([{"value": 60, "valid_from": "2031-01-02", "valid_until": "2031-01-01"}], "before"),
        ([], "at least one"),
    ],
)
def test_bad_dated_limits_are_refused(limit: list[dict[str, Any]], reason: str) -> None:
    with pytest.raises(RuleLoadError, match=reason):
        rule(**pm25_daily(limit=limit))


def test_clear_with_dated_limits_is_refused() -> None:
    with pytest.raises(RuleLoadError, match="clear"):
        rule(**pm25_daily(clear=40))


@pytest.mark.parametrize(("valid_hours", "judged"), [(19, False), (20, True), (24, True)])
def test_a_day_needs_20_valid_hourly_means(valid_hours: int, judged: bool) -> None:
    ops = run(pm25_daily(), minute_day("2031-01-05", 80.0, hours=valid_hours))
    assert [o.action for o in ops] == (["open"] if judged else [])


def test_an_hour_needs_45_minutes_of_data() -> None:
    # 24 hours of 44 minutes each: no valid hour, so no daily mean, however high.
    assert run(pm25_daily(), minute_day("2031-01-05", 500.0, minutes=44)) == []
    # 20 hours of 45 minutes: judged.
    ops = run(pm25_daily(), minute_day("2031-01-05", 80.0, hours=20, minutes=45))
    assert [o.action for o in ops] == ["open"]


def test_the_daily_mean_is_the_mean_of_hourly_means() -> None:
    # Hour 0 has 60 readings of 100, hours 1-19 have 45 readings of 40: the mean of hourly
    # means is (100 + 19 x 40) / 20 = 43, the mean of minute values would be about 47.
    t0 = day_start("2031-01-05")
    readings = [Reading(t0 + timedelta(minutes=m), "st1", "pm25", 100.0) for m in range(60)]
    readings += [
        Reading(t0 + timedelta(hours=h, minutes=m), "st1", "pm25", 40.0)
        for h in range(1, 20)
        for m in range(45)
    ]
    readings.append(Reading(t0 + timedelta(days=1), "st1", "pm25", 0.0))
    assert run(pm25_daily(limit=45), readings) == []
    ops = run(pm25_daily(limit=42.5), readings)
    assert ops[0].trigger[0].value == pytest.approx(43.0)


def test_hourly_data_counts_one_reading_per_valid_hour() -> None:
    # HJ 212 hourly data (CN 2061): one reading an hour is a whole hour's mean.
    t0 = day_start("2031-01-05")
    fields = pm25_daily(selector={"metric": "a34004.avg_hour"}, expected_interval="1h")
    hours = [Reading(t0 + timedelta(hours=h), "st1", "a34004.avg_hour", 55.0) for h in range(20)]
    close = Reading(t0 + timedelta(days=1), "st1", "a34004.avg_hour", 0.0)
    assert [o.action for o in run(fields, [*hours, close])] == ["open"]
    assert run(fields, [*hours[:19], close]) == []


def test_validity_is_for_day_windows_only() -> None:
    with pytest.raises(RuleLoadError, match="day windows only"):
        rule(**pm25_daily(align="hour"))


# -- flatline over analyser samples ---------------------------------------------------------

COD = {
    "kind": "flatline",
    "selector": {"metric": "w01018"},
    "for": "8h",
    "min_samples": 5,
    "sample_time_metric": "w01018.sample_time",
}
T = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def cod_packets(
    hours: float, value_of: Any, cycle_h: float = 2.0, every_s: float = 30.0, flip: bool = False
) -> list[Reading]:
    """Real-time packets every `every_s`: the value and the SampleTime of the analyser's last
    cycle (a new sample each `cycle_h`), value and time in either order."""
    out: list[Reading] = []
    n = int(hours * 3600 / every_s)
    for i in range(n):
        t = T + timedelta(seconds=i * every_s)
        cycle = int(i * every_s // (cycle_h * 3600))
        sample_t = (T + timedelta(hours=cycle * cycle_h)).timestamp()
        pair = [
            Reading(t, "logger1", "w01018", value_of(cycle)),
            Reading(t, "logger1", "w01018.sample_time", sample_t),
        ]
        out += reversed(pair) if flip else pair
    return out


@pytest.mark.parametrize("flip", [False, True])
def test_repeats_between_analyser_samples_are_not_a_flatline(flip: bool) -> None:
    # 12 hours, a new sample every 2 h with a new value: repeated packets between samples are
    # one sample each, so nothing is flat.
    ops = run(COD, cod_packets(12, lambda c: 30.0 + c, flip=flip))
    assert ops == []


@pytest.mark.parametrize("flip", [False, True])
def test_the_same_value_over_many_samples_is_a_flatline(flip: bool) -> None:
    ops = run(COD, cod_packets(12, lambda c: 30.0, flip=flip))
    assert [o.action for o in ops] == ["open"]
    # Opens at the 5th sample (8 h after the first), when the run spans `for`.
    assert ops[0].at == (T + timedelta(hours=8)).timestamp()
    assert ops[0].started_at == T.timestamp()
    assert {item.metric for item in ops[0].trigger} == {"w01018"}


def test_without_the_option_repeated_packets_look_frozen() -> None:
    # The old behaviour this option corrects: 30 s packets repeating a 2 h sample look flat.
    plain = {k: v for k, v in COD.items() if k != "sample_time_metric"} | {"for": "2h"}
    plain["min_samples"] = 30
    packets = cod_packets(3, lambda c: 30.0 + c, cycle_h=2.5)
    ops = run(plain, [r for r in packets if r.metric == "w01018"])
    # Opens 2 h into one analyser cycle, resolves when the next sample changes the value.
    assert [o.action for o in ops] == ["open", "resolve"]


def test_sample_time_metric_must_differ_from_the_value_metric() -> None:
    with pytest.raises(RuleLoadError, match="differ"):
        rule(**(COD | {"sample_time_metric": "w01018"}))


# -- the same, from real HJ 212 packets through the gateway's decoding -----------------------


def hj212_rtd(at_: datetime, cod: float, sampled: datetime) -> list[Reading]:
    """Readings of one CN 2011 packet carrying COD and its SampleTime, as the gateway decodes it."""
    local = ZoneInfo("Asia/Shanghai")
    cp = (
        f"DataTime={at_.astimezone(local):%Y%m%d%H%M%S};"
        f"w01018-Rtd={cod},w01018-Flag=N,w01018-SampleTime={sampled.astimezone(local):%Y%m%d%H%M%S}"
    )
    frame = encode(f"QN=1;ST=32;CN=2011;PW=123456;MN=logger1;Flag=4;CP=&&{cp}&&")
    limits = Limits(
        max_payload_bytes=65536, max_future=timedelta(days=1), retention=timedelta(days=3650)
    )
    conv = to_readings(decode_packet(frame), "rtd", local, tables(), limits, at_)
    assert conv.rejections == ()
    return list(conv.readings)


def test_the_pack_cod_flatline_on_decoded_hj212_packets() -> None:
    pack = load_directory(PACK, DEPARTMENTS)
    cod_rule = next(r for r in pack.rules if r.id == "cod-flatline")
    ctx = device("logger1", "wastewater_outlet")

    def run_packets(value_of: Any) -> list[ClueOp]:
        engine = Engine([cod_rule], MemoryDirectory([ctx]), CREDIT, 60)
        ops: list[ClueOp] = []
        for i in range(12 * 6):  # 12 hours of packets every 10 minutes
            t = T + timedelta(minutes=10 * i)
            cycle = i // 12  # a new analyser sample every 2 hours
            ops += engine.on_readings(hj212_rtd(t, value_of(cycle), T + timedelta(hours=2 * cycle)))
        return ops

    metrics = {r.metric for r in hj212_rtd(T, 30.0, T)}
    assert metrics == {"w01018", "w01018.sample_time"}
    assert run_packets(lambda c: 30.0 + c) == []  # a new value each sample: not flat
    ops = run_packets(lambda c: 30.0)  # the same value over five samples: flat
    assert [o.action for o in ops] == ["open"]
    assert ops[0].at == (T + timedelta(hours=8)).timestamp()
