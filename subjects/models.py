"""Typed messages of the subject library that other packages read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class CreditGrade(StrEnum):
    """Credit tier of a subject (信用分级): A is the best, D the worst."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What the rule engine needs to know about a device: the subject it watches and its role."""

    device_id: str
    role: str
    credit_code: str
    subject_name: str
    industry: str
    grid: str
    credit_grade: CreditGrade
    tags: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    # Per-subject numbers rules may compare against, e.g. {"permit.cod_mg_l": 50.0}.
    attributes: Mapping[str, float] = field(default_factory=dict)


class DeviceDirectory(Protocol):
    """Looks up a device's binding; None when the device is bound to no subject."""

    def context(self, device_id: str) -> DeviceContext | None: ...
