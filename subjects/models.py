"""Typed messages of the subject library that other packages read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from core.principal import Principal


class CreditScheme(StrEnum):
    """Which credit evaluation a subject's grade comes from (信用评价体系)."""

    ABCD = "abcd"  # grades A-D, the general tiered-supervision scale
    JIANGSU_ENV = "jiangsu_env"  # Jiangsu's five-colour environmental credit (绿蓝黄红黑)


class CreditGrade(StrEnum):
    """Grade of the A-D scheme (信用分级): A is the best, D the worst."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


class EnvColour(StrEnum):
    """Grade of Jiangsu's five-colour environmental credit: green is the best, black the worst."""

    GREEN = "green"
    BLUE = "blue"
    YELLOW = "yellow"
    RED = "red"
    BLACK = "black"


# A grade of either scheme; the values never collide, so one mapping can hold both schemes.
Grade = CreditGrade | EnvColour


class SupervisionMethod(StrEnum):
    """How an alert on a subject of a grade is handled by default (监管方式, plan §三(三))."""

    REMOTE = "remote"  # 远程监管: from the desk (joint inspection only from a severity up)
    ON_SITE = "on_site"  # 现场检查: an on-site visit (joint when several departments supervise)


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """What the rule engine needs to know about a device: the subject it watches and its role."""

    device_id: str
    role: str
    credit_code: str
    subject_name: str
    industry: str
    grid: str
    credit_grade: Grade
    tags: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    # Per-subject numbers rules may compare against, e.g. {"permit.cod_mg_l": 50.0}.
    attributes: Mapping[str, float] = field(default_factory=dict)


class DeviceDirectory(Protocol):
    """Looks up a device's binding; None when the device is bound to no subject."""

    def context(self, device_id: str) -> DeviceContext | None: ...


class RiskLevel(StrEnum):
    """Risk tier of a subject on the four-colour scale: 低 / 一般 / 较大 / 重大."""

    LOW = "low"
    GENERAL = "general"
    CONSIDERABLE = "considerable"
    MAJOR = "major"


class DeviceRole(StrEnum):
    """Documented device roles; other roles matching ROLE_PATTERN are allowed too."""

    AIR_STATION = "air_station"
    WASTEWATER_OUTLET = "wastewater_outlet"
    STACK = "stack"
    PRODUCTION_POWER = "production_power"
    TREATMENT_POWER = "treatment_power"
    TANK = "tank"
    GAS_DETECTOR = "gas_detector"
    CAMERA = "camera"


ROLE_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"


@dataclass(frozen=True, slots=True)
class SubjectInfo:
    """A subject as alerts see it: identity, tiers and the departments supervising it now."""

    credit_code: str
    name: str
    grid: str
    industry: str
    credit_grade: Grade
    risk_level: RiskLevel
    tags: frozenset[str] = frozenset()
    departments: frozenset[str] = frozenset()
    attributes: Mapping[str, float] = field(default_factory=dict)

    @property
    def cross_department(self) -> bool:
        """In the cross-department library: two or more departments supervise it now."""
        return len(self.departments) >= 2


class ChangeKind(StrEnum):
    """What happened to a subject, for the full-process record."""

    CREATED = "subject.created"
    UPDATED = "subject.updated"
    DELETED = "subject.deleted"
    DEPARTMENT_LINKED = "subject.department_linked"
    DEPARTMENT_UNLINKED = "subject.department_unlinked"
    LINK_REQUESTED = "subject.link_requested"
    LINK_REFUSED = "subject.link_refused"
    DEVICE_BOUND = "subject.device_bound"
    DEVICE_UNBOUND = "subject.device_unbound"


@dataclass(frozen=True, slots=True)
class SubjectChanged:
    """One edit of the subject library, with who made it and the record before and after.

    `before` / `after` are JSON-ready snapshots (str, number, bool, list, dict, None) of the
    subject, link or binding concerned, so the audit chain can hash them canonically.
    """

    kind: ChangeKind
    credit_code: str
    actor: str
    department: str
    at: datetime
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    device_id: str | None = None
    linked_department: str | None = None
    source: str = "api"

    @classmethod
    def by(
        cls, actor: Principal, kind: ChangeKind, credit_code: str, at: datetime, **details: Any
    ) -> SubjectChanged:
        """The change as `actor` made it: their name and department are recorded with it."""
        return cls(kind, credit_code, actor.name, actor.department, at, **details)
