"""The sample pack's GB 3095 daily-mean rules on the days either side of each dated change.

Each case runs the pack's own rule (deploy/rules/air.yaml) over one full local day of minute
data at one value, on a station of the rule's area class: 2026-02-28 / 2026-03-01 (GB 3095-2012
to GB 3095-2026) and 2030-12-31 / 2031-01-01 (GB 3095-2026 stage 1 to stage 2).
"""

from __future__ import annotations

import pytest

from rules.engine import Engine
from rules.loader import load_directory
from tests.rules.support import DEPARTMENTS, MemoryDirectory, device
from tests.rules.test_law_windows import CREDIT, day_start, minute_day
from tests.rules.test_sample_pack import PACK

RULES = {r.id: r for r in load_directory(PACK, DEPARTMENTS).rules}


def judged(rule_id: str, area_class: int, metric: str, day: str, value: float) -> bool:
    """Does the rule raise an exceedance for the day (its one day window)?"""
    station = device("st1", "air_station", attributes={"air.area_class": area_class})
    engine = Engine([RULES[rule_id]], MemoryDirectory([station]), CREDIT, 0)
    ops = engine.on_readings(minute_day(day, value, metric=metric))
    assert all(o.started_at == day_start(day).timestamp() for o in ops)
    return [o.action for o in ops] == ["open"]


@pytest.mark.parametrize(
    ("rule_id", "area_class", "metric", "day", "value", "exceeds"),
    [
        # PM2.5 grade II: 75 (2012) -> 60 (2026 stage 1) -> 50 (stage 2).
        ("air-pm25-daily-mean-class2", 2, "pm25", "2026-02-28", 70.0, False),
        ("air-pm25-daily-mean-class2", 2, "pm25", "2026-03-01", 70.0, True),
        ("air-pm25-daily-mean-class2", 2, "pm25", "2026-02-28", 76.0, True),
        ("air-pm25-daily-mean-class2", 2, "pm25", "2030-12-31", 55.0, False),
        ("air-pm25-daily-mean-class2", 2, "pm25", "2031-01-01", 55.0, True),
        # PM2.5 grade I: 35 (2012) -> 25 (2026).
        ("air-pm25-daily-mean-class1", 1, "pm25", "2026-02-28", 30.0, False),
        ("air-pm25-daily-mean-class1", 1, "pm25", "2026-03-01", 30.0, True),
        # PM10 grade II: 150 until 2030-12-31, then 100 (the draft's value, see the rule).
        ("air-pm10-daily-mean-class2", 2, "pm10", "2030-12-31", 120.0, False),
        ("air-pm10-daily-mean-class2", 2, "pm10", "2031-01-01", 120.0, True),
        ("air-pm10-daily-mean-class2", 2, "pm10", "2031-01-01", 100.0, False),
        ("air-pm10-daily-mean-class2", 2, "pm10", "2026-03-01", 151.0, True),
        # PM10 grade I: 50 until 2030-12-31; from 2031 no value was found: nothing is judged.
        ("air-pm10-daily-mean-class1", 1, "pm10", "2030-12-31", 55.0, True),
        ("air-pm10-daily-mean-class1", 1, "pm10", "2031-01-01", 500.0, False),
    ],
)
def test_the_limit_in_force_on_each_side_of_a_change(
    rule_id: str, area_class: int, metric: str, day: str, value: float, exceeds: bool
) -> None:
    assert judged(rule_id, area_class, metric, day, value) is exceeds


def test_a_station_of_the_other_area_class_is_not_judged_by_the_rule() -> None:
    assert judged("air-pm25-daily-mean-class1", 2, "pm25", "2026-03-01", 500.0) is False
