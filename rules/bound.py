"""A rule bound to one device or subject: limits, hold and severity resolved once."""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from rules import credit
from rules.kinds import KindEntry, SampleEvaluator, entry_of
from rules.limits import OPS, Cmp, MissingAttributeError
from rules.models import Severity
from rules.settings import CreditModifier
from rules.spec import Rule, RuleKind, Schedule
from subjects.models import DeviceContext, Grade

__all__ = ["OPS", "Bound", "Cmp", "CompiledSchedule", "MissingAttributeError", "fingerprint"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
        "entry",
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
        "sample",
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
        self.kind = RuleKind(rule.kind)
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
        # The kind's entry, resolved once here so the hot path never looks a kind up.
        entry: KindEntry[Rule] = entry_of(rule.kind)
        self.entry = entry
        self.sample: SampleEvaluator = entry.sample
        self.replayed = entry.replayed
        self.valid_flags: frozenset[str] = (
            frozenset(rule.valid_flags) if rule.valid_flags is not None else entry.valid_flags
        )
        self.share_flags: frozenset[str] = frozenset()
        self.max_share = 0.0
        # Hot-path hints for the engine, set by the kinds they apply to: `quiet` (an inactive
        # threshold needs no evaluation), `lazy_last_seen` (absence tracks the newest time).
        self.quiet = False
        self.lazy_last_seen = False
        entry.bind(self, rule, ctx, mod)

    def limit_at(self, t: float) -> float | None:
        """The limit in force at `t` (epoch seconds); None when no dated limit covers it."""
        if self.dated is None:
            return self.limit
        for lo, hi, value in self.dated:
            if lo <= t < hi:
                return value
        return None
