"""A rule bound to one device or subject: limits, hold and severity resolved once."""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rules import credit
from rules.flags import DEFAULT_VALID_FLAGS
from rules.models import Severity
from rules.settings import CreditModifier
from rules.spec import (
    AbsenceRule,
    CompositeRule,
    DatedLimit,
    DetectionRule,
    FlagShareRule,
    FlatlineRule,
    Limit,
    RateRule,
    Rule,
    Schedule,
    ThresholdRule,
    WindowRule,
)
from subjects.models import DeviceContext, Grade

Cmp = Callable[[float, float], bool]
OPS: dict[str, Cmp] = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MissingAttributeError(LookupError):
    """A limit refers to a subject attribute the subject does not have."""


class CompiledSchedule:
    """Weekly windows in local time; `active(t)` takes epoch seconds."""

    __slots__ = ("_windows", "_zone")

    def __init__(self, schedule: Schedule) -> None:
        self._zone = ZoneInfo(schedule.timezone)
        # Each window as (weekday index, start minute, end minute) with end > start, the
        # part after midnight of a wrapping window moved to the next day.
        spans: list[tuple[int, int, int]] = []
        for w in schedule.windows:
            start = w.start.hour * 60 + w.start.minute
            end = (
                1440 if w.end.hour == 23 and w.end.second == 59 else w.end.hour * 60 + w.end.minute
            )
            for day in w.days:
                d = _DAYS.index(day)
                if end > start:
                    spans.append((d, start, end))
                else:
                    spans.append((d, start, 1440))
                    spans.append(((d + 1) % 7, 0, end))
        self._windows = tuple(spans)

    def active(self, t: float) -> bool:
        local = datetime.fromtimestamp(t, self._zone)
        day = local.weekday()
        minute = local.hour * 60 + local.minute
        return any(d == day and s <= minute < e for d, s, e in self._windows)


def fingerprint(rule_id: str, scope: str) -> str:
    """Identity of a clue episode's stream: rule + device (or subject for composites)."""
    return hashlib.sha256(f"{rule_id}\x1f{scope}".encode()).hexdigest()[:32]


def _resolve(value: Limit, ctx: DeviceContext | None, rule_id: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    attrs: Mapping[str, float] = ctx.attributes if ctx is not None else {}
    if value.attribute not in attrs:
        raise MissingAttributeError(
            f"rule {rule_id}: the subject has no attribute {value.attribute!r}"
        )
    return float(attrs[value.attribute]) * value.factor


_LIMIT_ZONE = "Asia/Shanghai"  # days of a threshold rule's dated limits


def _dated(
    limits: Sequence[DatedLimit], ctx: DeviceContext | None, rule_id: str, zone: ZoneInfo
) -> tuple[tuple[float, float, float], ...]:
    """Dated limits as epoch-second spans: from local midnight of `valid_from` to the
    local midnight after `valid_until`."""
    out = []
    for d in limits:
        lo = datetime.combine(d.valid_from, time(), zone).timestamp() if d.valid_from else -math.inf
        hi = (
            datetime.combine(d.valid_until + timedelta(days=1), time(), zone).timestamp()
            if d.valid_until
            else math.inf
        )
        out.append((lo, hi, _resolve(d.value, ctx, rule_id)))
    return tuple(out)


class Bound:
    """Everything the evaluator reads on the hot path, as plain attributes (no pydantic)."""

    __slots__ = (
        "agg",
        "cap",
        "clear",
        "clear_after",
        "clear_cmp",
        "cmp",
        "conditions",
        "credit_code",
        "dated",
        "department",
        "duration",
        "expected",
        "fingerprint",
        "hold",
        "hour_min_readings",
        "keep",
        "kind",
        "labels",
        "lazy_last_seen",
        "limit",
        "match_all",
        "max_gap",
        "max_share",
        "min_ratio",
        "min_samples",
        "min_score",
        "missing_for",
        "offset_s",
        "per",
        "quiet",
        "replayed",
        "rule",
        "rule_id",
        "sample_time_metric",
        "schedule",
        "scope",
        "severity",
        "share_flags",
        "sliding",
        "title",
        "tolerance",
        "valid_flags",
        "valid_hours",
        "version",
        "window_s",
        "zones",
    )

    def __init__(
        self,
        rule: Rule,
        scope: str,
        ctx: DeviceContext | None,
        credit_table: Mapping[Grade, CreditModifier],
        cap: int,
    ) -> None:
        grade = ctx.credit_grade if ctx is not None else None
        mod = credit.modifier(credit_table, grade, rule.credit_tiered)
        self.rule = rule
        self.kind = rule.kind
        self.rule_id = rule.id
        self.version = rule.version
        self.department = rule.department
        self.title = rule.title
        self.scope = scope
        self.credit_code = ctx.credit_code if ctx is not None else None
        self.fingerprint = fingerprint(rule.id, scope)
        self.severity: Severity = credit.severity(rule.severity, mod)
        self.schedule = CompiledSchedule(rule.schedule) if rule.schedule else None
        self.cap = cap
        self.hold = 0.0
        self.keep = 0.0
        self.cmp: Cmp = operator.gt
        self.limit = 0.0
        # Dated limits as (first second, first second after, value); None: `limit` always.
        self.dated: tuple[tuple[float, float, float], ...] | None = None
        self.valid_hours = 0  # > 0: day windows judge the mean of valid hourly means
        self.hour_min_readings = 0.0
        self.sample_time_metric: str | None = None
        self.clear_cmp: Cmp | None = None
        self.clear: float | None = None
        self.agg = ""
        self.window_s = 0.0
        self.offset_s = 0.0
        self.sliding = False
        self.expected = 1.0
        self.min_ratio = 0.0
        self.per = 1.0
        self.max_gap = 0.0
        self.missing_for = 0.0
        self.duration = 0.0
        self.tolerance = 0.0
        self.min_samples = 0
        self.conditions: tuple[tuple[str, str, Cmp, float, float], ...] = ()
        self.match_all = True
        self.labels: frozenset[str] = frozenset()
        self.zones: frozenset[str] = frozenset()
        self.min_score = 0.0
        self.clear_after = 0.0
        self.valid_flags: frozenset[str] = (
            frozenset(rule.valid_flags)
            if rule.valid_flags is not None
            else DEFAULT_VALID_FLAGS[rule.kind]
        )
        self.share_flags: frozenset[str] = frozenset()
        self.max_share = 0.0
        # Hot-path hints for the engine: a threshold without a schedule that is inactive and
        # not breached needs no evaluation at all; these kinds keep history for late data.
        self.quiet = rule.kind == "threshold" and rule.schedule is None
        # Absence keeps only the newest data time: the engine tracks it without evaluating.
        self.lazy_last_seen = rule.kind == "absence"
        self.replayed = rule.kind in (
            "threshold",
            "window",
            "rate",
            "flatline",
            "composite",
            "flag_share",
        )
        if isinstance(rule, ThresholdRule | WindowRule | RateRule | CompositeRule | DetectionRule):
            self.hold = credit.hold(rule.hold, mod)
            self.keep = credit.hold(rule.keep_firing_for, mod)
        if isinstance(rule, ThresholdRule | WindowRule | RateRule):
            self.cmp = OPS[rule.op]
            # The same for every credit grade: credit never moves a limit.
            if isinstance(rule.limit, list):
                zone = rule.timezone if isinstance(rule, WindowRule) else _LIMIT_ZONE
                self.dated = _dated(rule.limit, ctx, rule.id, ZoneInfo(zone))
                self.quiet = False  # the limit depends on the date: always evaluate
            else:
                self.limit = _resolve(rule.limit, ctx, rule.id)
        if isinstance(rule, ThresholdRule | WindowRule) and rule.clear is not None:
            self.clear_cmp = OPS[rule.op]
            self.clear = _resolve(rule.clear, ctx, rule.id)
        if isinstance(rule, WindowRule):
            self.agg = rule.agg
            self.window_s = rule.window_s
            self.sliding = rule.align == "sliding"
            offset = datetime(2025, 1, 1, tzinfo=ZoneInfo(rule.timezone)).utcoffset()
            self.offset_s = (offset or timedelta(0)).total_seconds()
            self.expected = rule.window_s / rule.expected_interval
            self.min_ratio = rule.min_valid_ratio
            if rule.validity is not None:
                # The day decides when valid hours / required hours reaches 1.
                self.valid_hours = rule.validity.hours
                self.hour_min_readings = (
                    rule.validity.minutes_per_hour * 60 / rule.expected_interval
                )
                self.min_ratio = 1.0
        elif isinstance(rule, RateRule):
            self.per = rule.per
            self.max_gap = rule.max_gap
        elif isinstance(rule, AbsenceRule):
            self.missing_for = credit.hold(rule.missing_for, mod)
        elif isinstance(rule, FlatlineRule):
            self.duration = credit.hold(rule.duration, mod)
            self.tolerance = rule.tolerance
            self.sample_time_metric = rule.sample_time_metric
            self.min_samples = rule.min_samples
        elif isinstance(rule, CompositeRule):
            self.match_all = rule.match == "all"
            self.conditions = tuple(
                (
                    c.role,
                    c.metric,
                    OPS[c.op],
                    _resolve(c.limit, ctx, rule.id),
                    c.max_age,
                )
                for c in rule.conditions
            )
        elif isinstance(rule, FlagShareRule):
            self.share_flags = frozenset(rule.flags)
            self.max_share = rule.max_share
            self.min_samples = rule.min_samples
            self.window_s = rule.window_s
            offset = datetime(2025, 1, 1, tzinfo=ZoneInfo(rule.timezone)).utcoffset()
            self.offset_s = (offset or timedelta(0)).total_seconds()
        elif isinstance(rule, DetectionRule):
            self.labels = frozenset(rule.labels)
            self.zones = frozenset(rule.zones)
            self.min_score = rule.min_score
            self.clear_after = rule.clear_after

    def limit_at(self, t: float) -> float | None:
        """The limit in force at `t` (epoch seconds); None when no dated limit covers it."""
        if self.dated is None:
            return self.limit
        for lo, hi, value in self.dated:
            if lo <= t < hi:
                return value
        return None
