"""Helpers for rule tests: an in-memory DeviceDirectory (our own Protocol) and builders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ingest.models import Reading
from rules.loader import parse_one
from rules.spec import Rule
from subjects.models import CreditGrade, DeviceContext, Grade

DEPARTMENTS = ("EEB", "EMB", "AMR", "AGR")
T0 = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)  # Monday 12:00 in Asia/Shanghai
# A rule file of one threshold rule, as the rule API takes it.
COD_HIGH = """\
id: cod-high
version: 1
department: EEB
title: COD high
legal_basis: 水污染防治法第十条
severity: major
selector: {metric: cod}
kind: threshold
op: ">"
limit: 50
"""


class MemoryDirectory:
    """Device bindings held in a dict: a test double of our own DeviceDirectory Protocol."""

    def __init__(self, contexts: Iterable[DeviceContext] = ()) -> None:
        self.contexts = {c.device_id: c for c in contexts}

    def context(self, device_id: str) -> DeviceContext | None:
        return self.contexts.get(device_id)

    def bind(self, ctx: DeviceContext) -> None:
        self.contexts[ctx.device_id] = ctx


def device(
    device_id: str,
    role: str,
    credit_code: str = "91310000MA1FL4CT3X",
    grade: Grade = CreditGrade.B,
    attributes: Mapping[str, float] | None = None,
    industry: str = "chemicals",
    tags: Iterable[str] = (),
) -> DeviceContext:
    return DeviceContext(
        device_id=device_id,
        role=role,
        credit_code=credit_code,
        subject_name="Test Co.",
        industry=industry,
        grid="G1",
        credit_grade=grade,
        tags=frozenset(tags),
        departments=frozenset({"EEB", "EMB"}),
        attributes=dict(attributes or {}),
    )


def rule(**fields: Any) -> Rule:
    """A valid rule from keyword fields (YAML keys), with common defaults filled in."""
    base: dict[str, Any] = {
        "id": "r1",
        "version": 1,
        "department": "EEB",
        "title": "test rule",
        "legal_basis": "test basis",
        "severity": "major",
    }
    base.update(fields)
    return parse_one(orjson.dumps(base).decode(), DEPARTMENTS)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def readings(device_id: str, metric: str, points: Iterable[tuple[float, float]]) -> list[Reading]:
    """Readings from (minute offset, value) pairs."""
    return [Reading(at(m), device_id, metric, v) for m, v in points]
