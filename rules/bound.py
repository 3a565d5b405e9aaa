"""A rule bound to one device or subject: limits, hold and severity resolved once."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rules import credit
from rules.flags import DEFAULT_VALID_FLAGS
from rules.models import Severity
from rules.settings import CreditModifier
from rules.spec import (
    AbsenceRule,
    CompositeRule,
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
        "department",
        "duration",
        "expected",
        "fingerprint",
        "hold",
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
        "schedule",
        "scope",
        "severity",
        "share_flags",
        "sliding",
        "title",
        "tolerance",
        "valid_flags",
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
            self.limit = _resolve(rule.limit, ctx, rule.id)  # the same for every credit grade
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
        elif isinstance(rule, RateRule):
            self.per = rule.per
            self.max_gap = rule.max_gap
        elif isinstance(rule, AbsenceRule):
            self.missing_for = credit.hold(rule.missing_for, mod)
        elif isinstance(rule, FlatlineRule):
            self.duration = credit.hold(rule.duration, mod)
            self.tolerance = rule.tolerance
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
