"""Validated input and output shapes of subjects, links and bindings (API and import share them)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from subjects import credit_code
from subjects.credit import check_in_scheme, parse_grade, scheme_of
from subjects.models import ROLE_PATTERN, CreditGrade, CreditScheme, Grade, RiskLevel

ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEVICE_ID = r"^[A-Za-z0-9_.-]{1,64}$"
# Separators of list cells: ASCII and full-width semicolons, as spreadsheets carry both.
LIST_SEPARATORS = re.compile(r"[;；]")

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


def _code(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string of 18 characters")
    return credit_code.validate(value)


def _tags(value: list[str]) -> list[str]:
    for tag in value:
        if LIST_SEPARATORS.search(tag) or "," in tag:
            raise ValueError(f"tag {tag!r} may not contain ';' or ','")
    return sorted(set(value))


def _attributes(value: dict[str, float]) -> dict[str, float]:
    for key, number in value.items():
        if not ATTRIBUTE_KEY.match(key):
            raise ValueError(f"attribute key {key!r} must match {ATTRIBUTE_KEY.pattern}")
        if not math.isfinite(number):
            raise ValueError(f"attribute {key!r} must be a finite number")
    return value


CreditCode = Annotated[str, BeforeValidator(_code)]
Tags = Annotated[list[Tag], AfterValidator(_tags), Field(max_length=64)]
Attributes = Annotated[dict[str, float], AfterValidator(_attributes)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# A grade of either credit scheme, from its code or a Chinese spelling ("A", "A级", "绿", "绿色").
GradeIn = Annotated[
    Grade,
    BeforeValidator(parse_grade),
    Field(description="A-D, or green/blue/yellow/red/black (绿/蓝/黄/红/黑) of jiangsu_env"),
]
# WGS-84 degrees, as the map and the subjects table's checks take them.
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False, description="WGS-84")]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False, description="WGS-84")]
SchemeField = Field(
    default=None,
    description="credit scheme: abcd (A-D) or jiangsu_env (five-colour); "
    "omitted: the scheme the grade belongs to",
)


def _grade_fits(grade: Grade | None, info: ValidationInfo) -> Grade | None:
    """A grade given with a scheme must be one of that scheme's (the error names credit_grade)."""
    scheme = info.data.get("credit_scheme")
    if grade is not None and scheme is not None:
        check_in_scheme(scheme, grade)
    return grade


def _scheme_of(scheme: CreditScheme | None, grade: Grade | None) -> CreditScheme | None:
    """The scheme to store is the grade's own; a scheme with no grade cannot be applied."""
    if grade is None:
        if scheme is not None:
            raise ValueError("credit_grade: give the grade in the new credit_scheme too")
        return None
    return scheme_of(grade)


class SubjectIn(BaseModel):
    """A subject as created; unspecified tiers default to grade B and general risk."""

    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode = Field(description="unified social credit code, GB 32100-2015")
    name: Name
    address: Text = ""
    grid: Short = Field(default="", description="administrative grid cell (网格)")
    industry: Short = ""
    credit_scheme: CreditScheme | None = SchemeField
    credit_grade: GradeIn = CreditGrade.B
    risk_level: RiskLevel = RiskLevel.GENERAL
    tags: Tags = Field(default_factory=list)
    attributes: Attributes = Field(
        default_factory=dict, description='numbers rules read, e.g. {"permit.cod_mg_l": 50}'
    )

    _fits = field_validator("credit_grade")(_grade_fits)

    @model_validator(mode="after")
    def _scheme(self) -> SubjectIn:
        self.credit_scheme = _scheme_of(self.credit_scheme, self.credit_grade)
        return self

    @property
    def scheme(self) -> CreditScheme:
        return scheme_of(self.credit_grade)


class SubjectPatch(BaseModel):
    """Fields to change; those left out (or null) keep their value, except the coordinates:
    both given as null clear them. The credit code never changes."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Text | None = None
    grid: Short | None = None
    industry: Short | None = None
    credit_scheme: CreditScheme | None = SchemeField
    credit_grade: GradeIn | None = None
    risk_level: RiskLevel | None = None
    tags: Tags | None = None
    attributes: Attributes | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None

    _fits = field_validator("credit_grade")(_grade_fits)

    @model_validator(mode="after")
    def _scheme(self) -> SubjectPatch:
        # A new grade brings its scheme along, so the stored pair always fits.
        self.credit_scheme = _scheme_of(self.credit_scheme, self.credit_grade)
        return self

    @model_validator(mode="after")
    def _both_coordinates(self) -> SubjectPatch:
        # The table keeps both or neither: half a position is no position on the map.
        if (self.latitude is None) != (self.longitude is None):
            missing = "longitude" if self.longitude is None else "latitude"
            raise ValueError(f"{missing}: give latitude and longitude together")
        return self

    @property
    def clears_coordinates(self) -> bool:
        """`"latitude": null, "longitude": null` given: the subject's position is removed
        (other fields left out or null keep their value)."""
        given = {"latitude", "longitude"} <= self.model_fields_set
        return given and self.latitude is None and self.longitude is None


class SubjectOut(BaseModel):
    """A subject with the departments supervising it now."""

    credit_code: str
    name: str
    address: str
    grid: str
    industry: str
    credit_scheme: CreditScheme
    credit_grade: Grade
    risk_level: RiskLevel
    tags: list[str]
    attributes: dict[str, float]
    latitude: float | None = None
    longitude: float | None = None
    departments: list[str]
    cross_department: bool
    created_at: datetime
    updated_at: datetime


class SubjectPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[SubjectOut]


class LinkIn(BaseModel):
    """A department starting to supervise a subject."""

    model_config = ConfigDict(extra="forbid")

    department: str = Field(description="department code, e.g. EEB")
    since: datetime | None = Field(default=None, description="default now; must carry an offset")
    until: datetime | None = Field(default=None, description="end of the period, open if unset")


class LinkOut(BaseModel):
    id: int
    credit_code: str
    department: str
    since: datetime
    until: datetime | None
    current: bool


class LinkRequestState(StrEnum):
    """Where a request to join a subject stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"


class LinkRequestOut(BaseModel):
    """A department's request to join a subject other departments supervise."""

    id: int
    credit_code: str
    department: str
    since: datetime | None = Field(description="asked start; when approved if unset")
    until: datetime | None
    state: LinkRequestState
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_department: str | None
    decided_at: datetime | None
    reason: str


class LinkDecisionIn(BaseModel):
    """Why a request was approved or refused, for the record."""

    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(default="", description="free text kept with the decision")


class BindingIn(BaseModel):
    """Bind a device to a subject in a role."""

    model_config = ConfigDict(extra="forbid")

    credit_code: CreditCode
    role: Annotated[str, StringConstraints(pattern=ROLE_PATTERN)] = Field(
        description="air_station, wastewater_outlet, stack, production_power, "
        "treatment_power, tank, gas_detector, camera, or another lower_snake_case role"
    )
    point: Short = Field(default="", description="monitoring point, e.g. outlet DW001")


class BindingOut(BaseModel):
    device_id: str
    credit_code: str
    subject_name: str
    role: str
    point: str
    since: datetime
    updated_at: datetime


def split_list(cell: str) -> list[str]:
    """A `;`-separated cell (ASCII or full-width) as its non-empty items."""
    return [item.strip() for item in LIST_SEPARATORS.split(cell) if item.strip()]
