"""Rules as data: pydantic models of the rule YAML, validated strictly."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from core.clock import ZoneName, zone_named
from rules.models import Severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like '90s', '5m', '1h', '1d'."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNIT_S[m.group(2)]
    raise ValueError(f"{value!r} is not a duration (use seconds or '30s', '5m', '1h', '1d')")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Op = Literal[">", ">=", "<", "<="]
FlagLetter = Literal["N", "F", "M", "S", "D", "C", "T", "B"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RuleKind(StrEnum):
    """The `kind` tag of a rule; `rules.kinds.KINDS` holds what each kind does."""

    THRESHOLD = "threshold"
    WINDOW = "window"
    RATE = "rate"
    ABSENCE = "absence"
    FLATLINE = "flatline"
    COMPOSITE = "composite"
    DETECTION = "detection"
    FLAG_SHARE = "flag_share"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AttributeLimit(_Strict):
    """A limit read from the subject's data, e.g. its discharge permit."""

    attribute: str = Field(min_length=1, description="key in the subject's attributes")
    factor: float = Field(default=1.0, gt=0, description="multiplies the attribute's value")


Limit = float | AttributeLimit


class DatedLimit(_Strict):
    """A limit in force for part of the calendar, e.g. a standard's transition period.

    Days are local days (the window rule's `timezone`, else Asia/Shanghai), both ends
    inclusive; the limit that applies is the one in force on the evaluation date (the
    judged window's start, or the reading's time).
    """

    value: Limit = Field(description="number, or {attribute: ...} of the subject")
    valid_from: date | None = Field(default=None, description="first day in force; open if unset")
    valid_until: date | None = Field(default=None, description="last day in force; open if unset")

    @model_validator(mode="after")
    def _order(self) -> DatedLimit:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until {self.valid_until} is before valid_from {self.valid_from}"
            )
        return self


def _dated_periods(limits: list[DatedLimit]) -> list[DatedLimit]:
    """Dated limits sorted by start; periods may not overlap (one limit per day)."""
    if not limits:
        raise ValueError("a list of dated limits needs at least one entry")
    ordered = sorted(limits, key=lambda d: d.valid_from or date.min)
    for a, b in pairwise(ordered):
        if a.valid_until is None or (b.valid_from or date.min) <= a.valid_until:
            raise ValueError(
                f"dated limits overlap: {a.valid_from or '…'}–{a.valid_until or '…'} and "
                f"{b.valid_from or '…'}–{b.valid_until or '…'}"
            )
    return ordered


DatedLimits = Annotated[list[DatedLimit], AfterValidator(_dated_periods)]


def _limit_shape(value: Any) -> Any:
    # One clear message for a value of no limit shape, instead of one per union member.
    if not isinstance(value, int | float | dict | list) or isinstance(value, bool):
        raise ValueError(
            f"{value!r} is not a limit: use a number, {{attribute: ...}} or a list of "
            "{value, valid_from, valid_until}"
        )
    return value


# A rule's limit: fixed, read from the subject, or by date ([{value, valid_from, valid_until}]).
LimitSpec = Annotated[float | AttributeLimit | DatedLimits, BeforeValidator(_limit_shape)]


class HourlyValidity(_Strict):
    """Daily values from hourly means, as GB 3095's data-validity rules count them."""

    hours: int = Field(
        default=20, ge=1, le=24, description="valid hourly means a day needs to be judged"
    )
    minutes_per_hour: float = Field(
        default=45, gt=0, le=60, description="minutes of data an hour needs to be a valid mean"
    )


def _parse_clock(value: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 22:00 as sexagesimal 1320: undo that.
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str):
        if value == "24:00":
            return time.max
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip())
        if m:
            return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"{value!r} is not a time of day 'HH:MM'")


Clock = Annotated[time, BeforeValidator(_parse_clock)]


class TimeWindow(_Strict):
    """Part of a week; `end` before `start` wraps past midnight (e.g. 22:00-06:00)."""

    days: list[Weekday] = Field(
        default_factory=lambda: list(WEEKDAYS), description="weekdays the window starts on"
    )
    start: Clock = Field(description="local time the window opens, 'HH:MM'")
    end: Clock = Field(description="local time the window closes, 'HH:MM' ('24:00' allowed)")


class Schedule(_Strict):
    """When a rule applies; outside it the rule's condition counts as not met."""

    timezone: ZoneName = Field(default="Asia/Shanghai", description="IANA zone of the windows")
    windows: list[TimeWindow] = Field(min_length=1, description="active time windows")


class Selector(_Strict):
    """Which readings a rule looks at: metric and device role, subject industry/grid/tags."""

    metric: str | None = Field(default=None, description="metric name; absence: None = any")
    role: str | None = Field(default=None, description="device role on its subject")
    industry: list[str] = Field(default_factory=list, description="subject industry in these")
    grid: list[str] = Field(default_factory=list, description="subject grid in these")
    tags: list[str] = Field(default_factory=list, description="subject carries all these tags")
    attributes: dict[str, float] = Field(
        default_factory=dict,
        description='subject attributes equal to these, e.g. {"air.area_class": 2} (GB 3095 '
        "area class 1 or 2)",
    )

    @property
    def needs_subject(self) -> bool:
        return bool(self.role or self.industry or self.grid or self.tags or self.attributes)


class RuleBase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="stable rule id")
    version: int = Field(ge=1, description="bumped on every change; stored on each clue")
    department: str = Field(description="department code that owns the rule's clues")
    title: str = Field(min_length=1, description="short human title")
    legal_basis: str = Field(min_length=1, description="the law or standard the rule enforces")
    severity: Severity = Field(description="severity for a B-grade subject")
    selector: Selector = Field(default_factory=Selector, description="what the rule looks at")
    schedule: Schedule | None = Field(default=None, description="when the rule applies")
    credit_tiered: bool = Field(
        default=True,
        description="credit grade changes this rule's hold and severity (never its limit); "
        "false for safety alarms that must open at once for everyone",
    )
    description: str = Field(default="", description="longer explanation")
    valid_flags: list[FlagLetter] | None = Field(
        default=None,
        min_length=1,
        description=(
            "HJ 212 data flags this rule judges; readings with other flags are skipped "
            "(unset: the kind's default from rules/flags.py, N only for exceedance kinds)"
        ),
    )


class _Held(RuleBase):
    hold: Duration = Field(default=0.0, alias="for", description="condition must last this long")
    keep_firing_for: Duration = Field(
        default=0.0, description="stay firing this long after the condition stops"
    )


def _need_metric(rule: RuleBase) -> None:
    if not rule.selector.metric:
        raise ValueError(f"selector.metric is required for a {getattr(rule, 'kind', '')} rule")


def _check_clear(op: str, limit: LimitSpec, clear: Limit | None) -> None:
    if isinstance(limit, list) and clear is not None:
        raise ValueError("`clear` cannot be combined with dated limits")
    if clear is None or not isinstance(limit, float | int) or not isinstance(clear, float | int):
        return
    if op in (">", ">=") and clear > limit:
        raise ValueError(f"clear {clear} must not be above the limit {limit} for op {op}")
    if op in ("<", "<=") and clear < limit:
        raise ValueError(f"clear {clear} must not be below the limit {limit} for op {op}")


class ThresholdRule(_Held):
    """A value compared with a limit, with hold, hysteresis and keep-firing."""

    kind: Literal["threshold"]
    op: Op = Field(description="comparison that means a breach")
    limit: LimitSpec = Field(
        description="number, {attribute: ...} of the subject, or dated limits "
        "[{value, valid_from, valid_until}]"
    )
    clear: Limit | None = Field(default=None, description="hysteresis: resolve only past this")

    @model_validator(mode="after")
    def _clear_side(self) -> ThresholdRule:
        _need_metric(self)
        _check_clear(self.op, self.limit, self.clear)
        return self


class WindowRule(_Held):
    """An aggregate over aligned (hourly, daily) or sliding windows."""

    kind: Literal["window"]
    agg: Literal["avg", "min", "max", "sum", "count"] = Field(description="aggregate")
    align: Literal["hour", "day", "sliding"] = Field(description="aligned windows or sliding")
    size: Duration | None = Field(default=None, description="window length (sliding only)")
    expected_interval: Duration = Field(
        gt=0, description="a device's normal reporting interval, to count valid data"
    )
    min_valid_ratio: float = Field(
        default=0.75, ge=0, le=1, description="a window with less data decides nothing"
    )
    timezone: ZoneName = Field(default="Asia/Shanghai", description="zone that aligns days")
    validity: HourlyValidity | None = Field(
        default=None,
        description="day windows only: judge the mean of valid hourly means, a day with fewer "
        "than `hours` of them decides nothing (instead of `min_valid_ratio`)",
    )
    op: Op
    limit: LimitSpec = Field(description="as for threshold, dated limits by the window's day")
    clear: Limit | None = None

    @model_validator(mode="after")
    def _check(self) -> WindowRule:
        _need_metric(self)
        if self.align == "sliding" and not self.size:
            raise ValueError("a sliding window needs `size`")
        if self.align != "sliding" and self.size is not None:
            raise ValueError("`size` is fixed by `align` for hour and day windows")
        if self.validity is not None and self.align != "day":
            raise ValueError("`validity` (valid hourly means) applies to day windows only")
        zone = zone_named(self.timezone)
        jan = datetime(2025, 1, 15, tzinfo=zone).utcoffset()
        jul = datetime(2025, 7, 15, tzinfo=zone).utcoffset()
        if jan != jul:
            raise ValueError(
                f"{self.timezone} has daylight saving; window alignment needs a fixed offset"
            )
        _check_clear(self.op, self.limit, self.clear)
        return self

    @property
    def window_s(self) -> float:
        if self.align == "hour":
            return 3600.0
        if self.align == "day":
            return 86400.0
        assert self.size is not None
        return self.size


class RateRule(_Held):
    """Change between consecutive readings, per unit time."""

    kind: Literal["rate"]
    op: Op
    limit: Limit
    per: Duration = Field(default=60.0, gt=0, description="the rate's time unit")
    max_gap: Duration = Field(
        default=900.0, gt=0, description="readings further apart than this are not compared"
    )

    @model_validator(mode="after")
    def _metric(self) -> RateRule:
        _need_metric(self)
        return self


class AbsenceRule(RuleBase):
    """Expected data missing for a duration (offline, or evasion during production hours)."""

    kind: Literal["absence"]
    missing_for: Duration = Field(alias="for", gt=0, description="no data for this long")


class FlatlineRule(RuleBase):
    """A value unchanged (within tolerance) for a duration: a sign of tampered data."""

    kind: Literal["flatline"]
    duration: Duration = Field(alias="for", gt=0, description="unchanged for this long")
    tolerance: float = Field(default=0.0, ge=0, description="max - min within this is flat")
    min_samples: int = Field(default=3, ge=2, description="at least this many samples")
    sample_time_metric: str | None = Field(
        default=None,
        min_length=1,
        description="metric carrying the analyser's sample time (HJ 212 SampleTime, e.g. "
        "w01018.sample_time): a value repeated under the same sample time is one sample, "
        "not a frozen sensor",
    )

    @model_validator(mode="after")
    def _metric(self) -> FlatlineRule:
        _need_metric(self)
        if self.sample_time_metric == self.selector.metric:
            raise ValueError("sample_time_metric must differ from selector.metric")
        return self


class CompositeCondition(_Strict):
    """One condition on the latest value of a metric from a device of a role."""

    role: str
    metric: str
    op: Op
    limit: Limit
    max_age: Duration = Field(default=300.0, gt=0, description="older values count as unknown")


class CompositeRule(_Held):
    """All/any of conditions across devices of one subject by role."""

    kind: Literal["composite"]
    match: Literal["all", "any"] = "all"
    conditions: list[CompositeCondition] = Field(min_length=1)

    @model_validator(mode="after")
    def _selector(self) -> CompositeRule:
        if self.selector.metric or self.selector.role:
            raise ValueError("a composite rule names metric and role in its conditions")
        return self


class DetectionRule(_Held):
    """Vision detections: label, zone, minimum score, hold, usually with a schedule."""

    kind: Literal["detection"]
    labels: list[str] = Field(min_length=1, description="detection labels that match")
    zones: list[str] = Field(default_factory=list, description="zones that match; empty = any")
    min_score: float = Field(default=0.5, ge=0, le=1, description="lowest score that counts")
    clear_after: Duration = Field(
        default=60.0, gt=0, description="resolved after no matching detection for this long"
    )


def _maintenance_and_fault() -> list[FlagLetter]:
    return ["M", "D"]


class FlagShareRule(RuleBase):
    """A device marking too much of a period as maintenance, fault or the like.

    Long or frequent "maintenance" is itself a known way of hiding an exceedance, so a share
    of flagged readings above `max_share` in an aligned hour or day raises a clue.
    """

    kind: Literal["flag_share"]
    flags: list[FlagLetter] = Field(
        default_factory=_maintenance_and_fault,
        min_length=1,
        description="flags that count against the device (default M maintenance, D fault)",
    )
    align: Literal["hour", "day"] = Field(default="day", description="the period judged")
    max_share: float = Field(
        gt=0, lt=1, description="share of the period's readings above which a clue opens"
    )
    min_samples: int = Field(
        default=1, ge=1, description="a period with fewer readings decides nothing"
    )
    timezone: ZoneName = Field(default="Asia/Shanghai", description="zone that aligns days")

    @property
    def window_s(self) -> float:
        return 3600.0 if self.align == "hour" else 86400.0


Rule = Annotated[
    ThresholdRule
    | WindowRule
    | RateRule
    | AbsenceRule
    | FlatlineRule
    | CompositeRule
    | DetectionRule
    | FlagShareRule,
    Field(discriminator="kind"),
]


class RuleFile(_Strict):
    """A YAML file of rules."""

    rules: list[Rule] = Field(description="the rules of this file")
