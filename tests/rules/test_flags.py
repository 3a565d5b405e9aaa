"""Data flags in the rules: only valid data judges an exceedance; flag shares raise clues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from ingest.models import Reading
from rules.engine import ClueOp, Engine
from rules.loader import RuleLoadError
from rules.settings import RulesSettings
from tests.rules.conftest import Clock, ServiceFactory, store_readings
from tests.rules.support import T0, MemoryDirectory, at, device, rule

CREDIT = RulesSettings().credit
COD = {"kind": "threshold", "selector": {"metric": "w01018"}, "op": ">", "limit": 50}


def engine_for(r: Any) -> Engine:
    return Engine([r], MemoryDirectory([device("d1", "outlet")]), CREDIT, 600)


def flagged(flag: str, minutes: range, value: float, metric: str = "w01018") -> list[Reading]:
    return [Reading(at(m), "d1", metric, value, flag) for m in minutes]


def opened(ops: list[ClueOp]) -> list[float]:
    return [(o.started_at - T0.timestamp()) / 60 for o in ops if o.action == "open"]


@pytest.mark.parametrize("flag", ["C", "M", "D", "F", "S", "B", "T"])
def test_values_above_the_limit_marked_invalid_raise_no_exceedance(flag: str) -> None:
    e = engine_for(rule(**COD))
    assert e.on_readings(flagged(flag, range(0, 30), 120.0)) == []


def test_the_same_values_marked_normal_do() -> None:
    e = engine_for(rule(**COD))
    assert opened(e.on_readings(flagged("N", range(0, 30), 120.0))) == [0]


def test_a_rule_may_widen_the_valid_flags() -> None:
    e = engine_for(rule(**COD, valid_flags=["N", "T"]))
    assert opened(e.on_readings(flagged("T", range(0, 3), 120.0))) == [0]


def test_calibration_in_the_middle_neither_breaches_nor_clears() -> None:
    e = engine_for(rule(**COD))
    ops = e.on_readings(flagged("N", range(0, 2), 120.0))
    assert opened(ops) == [0]
    # Calibration gas reads low: not a sign the exceedance ended.
    assert e.on_readings(flagged("C", range(2, 10), 5.0)) == []
    resolved = e.on_readings(flagged("N", range(10, 11), 20.0))
    assert [o.action for o in resolved] == ["resolve"]


def test_window_counts_only_valid_readings() -> None:
    hourly = {
        "kind": "window",
        "selector": {"metric": "w01018"},
        "agg": "avg",
        "align": "hour",
        "expected_interval": "1m",
        "min_valid_ratio": 0.75,
        "op": ">",
        "limit": 50,
    }
    # Hour 12:00-13:00 local: 40 valid minutes above the limit, 20 in maintenance.
    e = engine_for(rule(**hourly))
    e.on_readings(flagged("N", range(0, 40), 120.0) + flagged("M", range(40, 60), 120.0))
    # The next hour's first reading closes the window: 40/60 valid is below 75%.
    assert e.on_readings(flagged("N", range(60, 61), 10.0)) == []
    # The same hour all valid decides: an exceedance.
    e = engine_for(rule(**hourly))
    e.on_readings(flagged("N", range(0, 60), 120.0))
    assert opened(e.on_readings(flagged("N", range(60, 61), 10.0))) == [0]


SHARE = {"kind": "flag_share", "align": "hour", "max_share": 0.25}


def test_maintenance_beyond_its_share_raises_a_clue() -> None:
    e = engine_for(rule(**SHARE))
    e.on_readings(flagged("N", range(0, 40), 10.0) + flagged("M", range(40, 60), 10.0))
    ops = e.on_readings(flagged("N", range(60, 61), 10.0))
    assert opened(ops) == [0]
    assert ops[0].trigger[0].value == pytest.approx(20 / 60)
    # An hour within the share resolves it when that hour closes.
    e.on_readings(flagged("N", range(61, 120), 10.0))
    assert [o.action for o in e.on_readings(flagged("N", range(120, 121), 10.0))] == ["resolve"]


def test_share_counts_every_metric_and_only_the_named_flags() -> None:
    e = engine_for(rule(**SHARE, flags=["D"]))
    # Maintenance does not count for a fault-only rule; faults on a second metric do.
    data = flagged("M", range(0, 60), 10.0) + flagged("N", range(0, 60), 1.0, "w21003")
    data.sort(key=lambda r: (r.time, r.metric))
    e.on_readings(data)
    assert e.on_readings(flagged("N", range(60, 61), 10.0)) == []
    e = engine_for(rule(**SHARE, flags=["D"]))
    data = flagged("N", range(60, 120), 10.0) + flagged("D", range(60, 120), 1.0, "w21003")
    data.sort(key=lambda r: (r.time, r.metric))
    e.on_readings(data)
    assert opened(e.on_readings(flagged("N", range(120, 121), 10.0))) == [60]


def test_a_bad_flag_in_a_rule_is_refused() -> None:
    with pytest.raises(RuleLoadError, match="valid_flags"):
        rule(**COD, valid_flags=["X"])


RULE_FILE = """\
id: cod-permit
version: 1
department: EEB
title: COD above the permit
legal_basis: test basis
severity: major
selector: {metric: w01018}
kind: threshold
op: ">"
limit: 50
"""


@pytest.mark.parametrize(("flag", "clues"), [("C", 0), ("N", 1)])
def test_calibration_period_through_the_service_and_database(
    tmp_path: Path,
    make_service: ServiceFactory,
    db: psycopg.Connection[Any],
    flag: str,
    clues: int,
) -> None:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "a.yaml").write_text(RULE_FILE, encoding="utf-8")
    svc = make_service(d, MemoryDirectory([device("d1", "outlet")]), Clock(at(30).timestamp()))
    batch = flagged(flag, range(0, 20), 120.0)
    store_readings(db, batch)
    svc.readings_committed(batch)
    assert svc.wait_idle()
    assert db.execute("SELECT count(*) FROM clues").fetchone() == (clues,)
    # The flag is stored with the value and a restart replays it the same way.
    assert db.execute("SELECT DISTINCT flag FROM readings").fetchall() == [(flag,)]
    svc.stop()
    again = make_service(d, MemoryDirectory([device("d1", "outlet")]), Clock(at(31).timestamp()))
    assert again.wait_idle()
    assert db.execute("SELECT count(*) FROM clues").fetchone() == (clues,)
