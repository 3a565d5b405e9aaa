"""Table-driven tests of every rule kind and state transition (pure evaluation via the engine)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError

from rules.bound import Bound
from rules.engine import Engine
from rules.evaluate import INITIAL, ClueAction, Sample, Tick, evaluate
from rules.settings import RulesSettings
from subjects.models import CreditGrade, DeviceContext, EnvColour, Grade
from tests.rules.support import T0, MemoryDirectory, at, device, readings, rule
from video.models import Box, Detection

CREDIT = RulesSettings().credit


@dataclass
class Case:
    name: str
    fields: dict[str, Any]
    inputs: list[
        Any
    ]  # (minute, value) readings, ("tick", minute), ("det", minute, label, zone, score)
    expected: list[tuple[str, float, float]]  # (action, started minute, at minute)
    ctx: DeviceContext | None = None
    metric: str = "x"
    lateness_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def run(case: Case) -> list[tuple[ClueAction, float, float]]:
    r = rule(**case.fields)
    directory = MemoryDirectory([case.ctx] if case.ctx else [])
    engine = Engine([r], directory, CREDIT, case.lateness_s)
    out = []
    for item in case.inputs:
        if item[0] == "tick":
            ops = engine.tick(at(item[1]).timestamp())
        elif item[0] == "det":
            _, minute, label, zone, score = item
            det = Detection(
                "cam1", label, score, Box(0, 0, 10, 10), zone, at(minute), "e1", 3, "ev1"
            )
            ops = engine.on_detections([det])
        else:
            dev = case.ctx.device_id if case.ctx else "d1"
            ops = engine.on_readings(readings(dev, case.metric, [item]))
        t0 = T0.timestamp()
        out += [(op.action, (op.started_at - t0) / 60, (op.at - t0) / 60) for op in ops]
    return out


def thr(**kw: Any) -> dict[str, Any]:
    return {"kind": "threshold", "selector": {"metric": "x"}, "op": ">", "limit": 50, **kw}


CASES = [
    Case(
        "threshold fires at once",
        thr(),
        [(0, 10), (1, 60), (2, 40)],
        [("open", 1, 1), ("resolve", 1, 2)],
    ),
    Case("equal to limit is not a breach for >", thr(), [(0, 50)], []),
    Case(
        "hold: pending then firing",
        thr(**{"for": "2m"}),
        [(0, 60), (1, 60), (2, 60)],
        [("open", 0, 2)],
    ),
    Case(
        "hold: interrupted pending never fires",
        thr(**{"for": "2m"}),
        [(0, 60), (1, 40), (2, 60), (3, 60)],
        [],
    ),
    Case(
        "hysteresis keeps firing above clear",
        thr(clear=40),
        [(0, 60), (1, 45), (2, 41), (3, 39)],
        [("open", 0, 0), ("resolve", 0, 3)],
    ),
    Case(
        "keep_firing_for bridges a short dip",
        thr(keep_firing_for="3m"),
        [(0, 60), (1, 40), (2, 60), (4, 40), (8, 40)],
        [("open", 0, 0), ("resolve", 0, 8)],
    ),
    Case(
        "lower limit op <",
        thr(op="<", limit=5),
        [(0, 10), (1, 4), (2, 6)],
        [("open", 1, 1), ("resolve", 1, 2)],
    ),
    Case(
        "schedule: outside the window is not a breach",
        thr(schedule={"windows": [{"start": "13:00", "end": "14:00"}]}),
        [(0, 60), (61, 60), (121, 60)],
        [("open", 61, 61), ("resolve", 61, 121)],
    ),
    Case(
        "schedule: weekday filter (Monday only)",
        thr(schedule={"windows": [{"days": ["tue"], "start": "00:00", "end": "24:00"}]}),
        [(0, 60), (24 * 60, 60)],
        [("open", 1440, 1440)],
    ),
    Case(
        "attribute limit from the subject",
        thr(limit={"attribute": "permit.x", "factor": 2}),
        [(0, 150), (1, 250)],
        [("open", 1, 1)],
        ctx=device("d1", "outlet", attributes={"permit.x": 100.0}),
    ),
    Case(
        "window: hourly mean closes with the next hour's reading",
        {
            "kind": "window",
            "selector": {"metric": "x"},
            "agg": "avg",
            "align": "hour",
            "expected_interval": "20m",
            "op": ">",
            "limit": 50,
        },
        [(0, 40), (20, 70), (40, 70), (60, 10), (80, 10), (100, 10), (120, 10)],
        [("open", 0, 60), ("resolve", 0, 60)],
    ),
    Case(
        "window: too little valid data decides nothing",
        {
            "kind": "window",
            "selector": {"metric": "x"},
            "agg": "avg",
            "align": "hour",
            "expected_interval": "20m",
            "min_valid_ratio": 0.75,
            "op": ">",
            "limit": 50,
        },
        [(0, 90), (60, 10)],
        [],
    ),
    Case(
        "window: daily max aligned to local midnight",
        {
            "kind": "window",
            "selector": {"metric": "x"},
            "agg": "max",
            "align": "day",
            "expected_interval": "6h",
            "min_valid_ratio": 0.5,
            "op": ">",
            "limit": 50,
        },
        [
            (-719, 10),
            (-360, 90),
            (0, 10),
            (360, 10),
            (720, 10),
            (1080, 10),
            (1440, 10),
            (1800, 10),
            (2160, 10),
        ],
        [("open", -720, 720), ("resolve", -720, 720)],
    ),
    Case(
        "window: sliding sum",
        {
            "kind": "window",
            "selector": {"metric": "x"},
            "agg": "sum",
            "align": "sliding",
            "size": "10m",
            "expected_interval": "5m",
            "min_valid_ratio": 0.5,
            "op": ">=",
            "limit": 100,
        },
        [(0, 50), (5, 50), (16, 10), (17, 10)],
        [("open", 5, 5), ("resolve", 5, 16)],
    ),
    Case(
        "rate: rise per minute",
        {"kind": "rate", "selector": {"metric": "x"}, "op": ">", "limit": 5, "per": "1m"},
        [(0, 10), (1, 12), (2, 20), (3, 21)],
        [("open", 2, 2), ("resolve", 2, 3)],
    ),
    Case(
        "rate: gap too long is not compared",
        {"kind": "rate", "selector": {"metric": "x"}, "op": ">", "limit": 5, "max_gap": "5m"},
        [(0, 10), (10, 100)],
        [],
    ),
    Case(
        "flatline: unchanged for the duration, started when it stopped changing",
        {"kind": "flatline", "selector": {"metric": "x"}, "for": "30m", "min_samples": 3},
        [(0, 5), (10, 7), (20, 7), (30, 7), (40, 7), (50, 8)],
        [("open", 10, 40), ("resolve", 10, 50)],
    ),
    Case(
        "flatline: tolerance absorbs jitter",
        {"kind": "flatline", "selector": {"metric": "x"}, "for": "20m", "tolerance": 0.1},
        [(0, 7.0), (10, 7.05), (20, 6.98)],
        [("open", 0, 20)],
    ),
    Case(
        "absence: tick after the duration, resolved by data",
        {"kind": "absence", "selector": {"metric": "x"}, "for": "30m"},
        [(0, 1), ("tick", 20), ("tick", 31), ("tick", 40), (45, 1)],
        [("open", 0, 31), ("resolve", 0, 45)],
    ),
    Case(
        "absence: only during production hours",
        {
            "kind": "absence",
            "selector": {"metric": "x"},
            "for": "30m",
            "schedule": {"windows": [{"start": "08:00", "end": "12:30"}]},
        },
        [(0, 1), ("tick", 40), ("tick", 24 * 60 - 220)],
        [("open", 0, 1220)],
    ),
    Case(
        "detection: hold across updates, zone and score filter",
        {
            "kind": "detection",
            "labels": ["person"],
            "zones": ["tank_farm"],
            "min_score": 0.5,
            "for": "1m",
            "clear_after": "2m",
        },
        [
            ("det", 0, "person", "tank_farm", 0.9),
            ("det", 0.5, "person", "gate", 0.9),
            ("det", 0.7, "person", "tank_farm", 0.3),
            ("det", 1, "person", "tank_farm", 0.8),
            ("tick", 2),
            ("tick", 3.5),
        ],
        [("open", 0, 1), ("resolve", 0, 3)],
    ),
    Case(
        "detection: night schedule ignores daytime",
        {
            "kind": "detection",
            "labels": ["person"],
            "schedule": {"windows": [{"start": "22:00", "end": "06:00"}]},
        },
        [("det", 0, "person", None, 0.9), ("det", 11 * 60, "person", None, 0.9)],
        [("open", 660, 660)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_kind(case: Case) -> None:
    assert run(case) == case.expected


def composite_case(prod: float, treat: float, treat_age_min: float) -> list[tuple[str, float]]:
    r = rule(
        kind="composite",
        conditions=[
            {
                "role": "production_power",
                "metric": "power",
                "op": ">",
                "limit": 30,
                "max_age": "5m",
            },
            {"role": "treatment_power", "metric": "power", "op": "<", "limit": 5, "max_age": "5m"},
        ],
        **{"for": "10m"},
    )
    directory = MemoryDirectory([device("p1", "production_power"), device("t1", "treatment_power")])
    engine = Engine([r], directory, CREDIT, 0)
    ops = []
    ops += engine.on_readings(readings("t1", "power", [(0, treat)]))
    for minute in range(0, 13):
        if minute and minute % 4 == 0 and treat_age_min == 0:
            ops += engine.on_readings(readings("t1", "power", [(minute, treat)]))
        ops += engine.on_readings(readings("p1", "power", [(minute + 0.1, prod)]))
    return [(op.action, round((op.started_at - T0.timestamp()) / 60, 1)) for op in ops]


def test_composite_all_across_roles_of_one_subject() -> None:
    assert composite_case(80, 1, 0) == [("open", 0.1)]
    assert composite_case(80, 20, 0) == []
    assert composite_case(10, 1, 0) == []
    # The treatment reading goes stale after 5 minutes: unknown is not a breach.
    assert composite_case(80, 1, 99) == []


def test_unchanged_evaluation_returns_the_same_state() -> None:
    r = rule(**thr())
    b = Bound(r, "d1", None, CREDIT, 10)
    st, out = evaluate(b, INITIAL, Sample(T0.timestamp(), "d1", "x", 10.0), 0)
    assert st is INITIAL
    assert out == ()
    st2, out2 = evaluate(b, INITIAL, Tick(T0.timestamp()), 0)
    assert st2 is INITIAL
    assert out2 == ()


@pytest.mark.parametrize(
    ("grade", "opens_at_minute", "severity"),
    [(CreditGrade.A, None, "warning"), (CreditGrade.B, 4, "major"), (CreditGrade.D, 2, "critical")],
)
def test_credit_grade_changes_hold_and_severity(
    grade: CreditGrade, opens_at_minute: float | None, severity: str
) -> None:
    # for 4m: A holds 6m (never reached here), B 4m, D 2m.
    r = rule(**thr(**{"for": "4m"}))
    engine = Engine([r], MemoryDirectory([device("d1", "outlet", grade=grade)]), CREDIT, 0)
    ops = engine.on_readings(readings("d1", "x", [(m, 60) for m in range(6)]))
    if opens_at_minute is None:
        assert ops == []
        return
    assert [(o.action, (o.at - T0.timestamp()) / 60) for o in ops] == [("open", opens_at_minute)]
    assert ops[0].bound.severity.value == severity


ALL_GRADES: list[Grade] = [*CreditGrade, *EnvColour]


@pytest.mark.parametrize("grade", ALL_GRADES)
def test_credit_never_changes_a_limit(grade: Grade) -> None:
    # Just past the limit is a breach, the limit itself is not, for every grade of both schemes.
    r = rule(**thr())
    for value, fires in ((50.01, True), (50.0, False)):
        engine = Engine([r], MemoryDirectory([device("d1", "outlet", grade=grade)]), CREDIT, 0)
        ops = engine.on_readings(readings("d1", "x", [(0, value)]))
        assert [o.action for o in ops] == (["open"] if fires else []), (grade, value)
        if fires:
            assert ops[0].bound.limit == 50.0


def test_permit_exceedance_is_one_for_grades_a_and_d() -> None:
    # The same hourly mean over the permit limit: A and D both raise the clue; D's is graver.
    r = rule(
        kind="window",
        selector={"metric": "cod"},
        agg="avg",
        align="hour",
        expected_interval="1m",
        op=">",
        limit={"attribute": "permit.cod_mg_l"},
    )
    got = {}
    for grade in (CreditGrade.A, CreditGrade.D):
        ctx = device("d1", "outlet", grade=grade, attributes={"permit.cod_mg_l": 50.0})
        engine = Engine([r], MemoryDirectory([ctx]), CREDIT, 0)
        ops = engine.on_readings(readings("d1", "cod", [(m, 50.5) for m in range(61)]))
        assert [o.action for o in ops] == ["open"], grade
        got[grade] = ops[0].bound
    assert got[CreditGrade.A].limit == got[CreditGrade.D].limit == 50.0
    assert got[CreditGrade.A].severity.value == "warning"
    assert got[CreditGrade.D].severity.value == "critical"


def test_credit_settings_refuse_a_threshold_margin() -> None:
    with pytest.raises(ValidationError, match="margin"):
        RulesSettings.model_validate(
            {"credit": {"A": {"hold_factor": 1, "margin": 0.05, "severity_shift": 0}}}
        )


@pytest.mark.parametrize(
    ("grade", "opens_at_minute"),
    [(EnvColour.GREEN, None), (EnvColour.BLUE, 4), (EnvColour.RED, 2), (EnvColour.BLACK, 1)],
)
def test_five_colour_grades_change_hold(grade: EnvColour, opens_at_minute: float | None) -> None:
    r = rule(**thr(**{"for": "4m"}))
    engine = Engine([r], MemoryDirectory([device("d1", "outlet", grade=grade)]), CREDIT, 0)
    ops = engine.on_readings(readings("d1", "x", [(m, 60) for m in range(6)]))
    assert [(o.at - T0.timestamp()) / 60 for o in ops] == (
        [] if opens_at_minute is None else [opens_at_minute]
    )


def test_untiered_safety_rule_ignores_credit() -> None:
    r = rule(**thr(credit_tiered=False, **{"for": "4m"}))
    for grade in CreditGrade:
        engine = Engine([r], MemoryDirectory([device("d1", "tank", grade=grade)]), CREDIT, 0)
        ops = engine.on_readings(readings("d1", "x", [(m, 51) for m in range(6)]))
        assert [(o.at - T0.timestamp()) / 60 for o in ops] == [4]
        assert ops[0].bound.severity.value == "major"


def test_selector_filters_role_industry_tags_and_unbound_devices() -> None:
    r = rule(
        **thr(
            selector={
                "metric": "x",
                "role": "outlet",
                "industry": ["chemicals"],
                "tags": ["key_discharger"],
            }
        )
    )
    directory = MemoryDirectory(
        [
            device("ok", "outlet", tags=["key_discharger", "other"]),
            device("wrong-role", "stack", tags=["key_discharger"]),
            device("no-tag", "outlet"),
            device("wrong-industry", "outlet", industry="food", tags=["key_discharger"]),
        ]
    )
    engine = Engine([r], directory, CREDIT, 0)
    fired = set()
    for dev in ("ok", "wrong-role", "no-tag", "wrong-industry", "unbound"):
        fired |= {o.bound.scope for o in engine.on_readings(readings(dev, "x", [(0, 99)]))}
    assert fired == {"ok"}


def test_missing_attribute_skips_the_device() -> None:
    r = rule(**thr(limit={"attribute": "permit.x"}))
    engine = Engine([r], MemoryDirectory([device("d1", "outlet")]), CREDIT, 0)
    assert engine.on_readings(readings("d1", "x", [(0, 1e9)])) == []
