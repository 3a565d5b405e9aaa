"""A rule that raises is isolated per stream and counted; a failed reload says why."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg_pool import ConnectionPool

from rules.bound import Bound
from rules.engine import Engine
from rules.evaluate import Sample, State, Transition
from rules.kinds import KINDS
from rules.service import RuleService
from rules.settings import RulesSettings
from rules.spec import RuleKind
from tests.rules.conftest import Clock, ServiceFactory
from tests.rules.support import MemoryDirectory, at, device, readings, rule
from tests.rules.test_engine import CREDIT, minutes
from tests.rules.test_service import RULE, clue_rows, feed, outlet, rules_dir

OVER = {"kind": "threshold", "selector": {"metric": "x"}, "op": ">", "limit": 50}


@pytest.fixture
def bad_rule_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """The threshold evaluator raises for rules whose id starts with `bad` (a rule's bug)."""
    entry = KINDS[RuleKind.THRESHOLD]
    real = entry.sample

    def evaluator(b: Bound, st: State[Any], s: Sample) -> tuple[State[Any], tuple[Transition, ...]]:
        if b.rule_id.startswith("bad"):
            raise ZeroDivisionError("the rule's bug")
        return real(b, st, s)

    monkeypatch.setitem(KINDS, RuleKind.THRESHOLD, dataclasses.replace(entry, sample=evaluator))


@pytest.mark.usefixtures("bad_rule_raises")
def test_a_raising_rule_costs_only_its_own_stream() -> None:
    errors: list[str] = []
    directory = MemoryDirectory([device("d1", "outlet")])
    e = Engine(
        [rule(id="bad", **OVER), rule(id="good", **OVER)],
        directory,
        CREDIT,
        600,
        on_rule_error=lambda rule_id, err: errors.append(rule_id),
    )
    ops = e.on_readings(readings("d1", "x", [(0, 60), (1, 70)]))
    assert [(o.bound.rule_id, *m) for o, m in zip(ops, minutes(ops), strict=True)] == [
        ("good", "open", 0, 0)
    ]
    assert errors == ["bad", "bad"]


@pytest.mark.usefixtures("bad_rule_raises")
def test_the_service_counts_the_rule_and_keeps_the_others_clues(
    tmp_path: Path, db: psycopg.Connection[Any], pool: ConnectionPool
) -> None:
    d = rules_dir(tmp_path, RULE)
    (d / "b.yaml").write_text(RULE.replace("cod-high", "bad-cod"), encoding="utf-8")
    registry = CollectorRegistry()
    svc = RuleService(
        RulesSettings(directory=d), pool, registry, outlet(), clock=Clock(at(5).timestamp())
    )
    svc.start()
    try:
        _check_isolated(db, svc, registry)
    finally:
        svc.stop()


def _check_isolated(
    db: psycopg.Connection[Any], svc: RuleService, registry: CollectorRegistry
) -> None:
    assert sorted(r.id for r in svc.ruleset.rules) == ["bad-cod", "cod-high"]
    feed(db, svc, readings("ww-1", "cod", [(0, 90)]))
    assert [r[1] for r in clue_rows(db)] == ["cod-high"]
    assert [h.rule_id for h in svc.failing_rules()] == ["bad-cod"]
    assert "ZeroDivisionError" in svc.failing_rules()[0].last_error
    assert registry.get_sample_value("offsite_rules_rule_errors_total", {"rule": "bad-cod"}) == 1
    assert registry.get_sample_value("offsite_rules_rule_up", {"rule": "bad-cod"}) == 0


def test_a_reload_whose_rebuild_fails_says_so_and_keeps_the_old_set(
    tmp_path: Path, make_service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = rules_dir(tmp_path, RULE)
    svc = make_service(d, outlet(), Clock(at(5).timestamp()))
    (d / "b.yaml").write_text(RULE.replace("cod-high", "other"))

    def broken(self: RuleService, ruleset: Any) -> Engine:
        raise RuntimeError("state rebuild broke")

    monkeypatch.setattr(RuleService, "_build_engine", broken)
    result = svc.reload()
    assert not result.ok
    assert result.rules == 1
    assert "state rebuild broke" in str(result.problems[0])
    assert [r.id for r in svc.ruleset.rules] == ["cod-high"]


def test_a_reload_with_the_engine_not_running_is_refused_at_once(
    tmp_path: Path, make_service: ServiceFactory
) -> None:
    svc = make_service(rules_dir(tmp_path, RULE), outlet(), Clock(at(5).timestamp()))
    assert svc.stop()
    result = svc.reload()
    assert not result.ok
    assert "not running" in str(result.problems[0])
