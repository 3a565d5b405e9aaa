"""Rule kinds as data: one entry per kind, resolved once when a rule binds to a device.

Adding a kind is a model in `rules.spec`, a member of `RuleKind`, its evaluator in
`rules.evaluate` and one `KindEntry` here: what its parameters are, how they bind, how it
evaluates, whether late data is replayed, how much history rebuilds it and how its clue
reads. `tests/rules/test_kinds.py` checks every member of the spec union has its entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from rules import credit, evaluate
from rules.evaluate import Result, Sample, Seen, State, TriggerItem
from rules.flags import EVERY, JUDGED
from rules.limits import LIMIT_ZONE, OPS, dated, resolve
from rules.settings import CreditModifier
from rules.spec import (
    AbsenceRule,
    CompositeRule,
    DetectionRule,
    FlagShareRule,
    FlatlineRule,
    RateRule,
    RuleBase,
    RuleKind,
    ThresholdRule,
    WindowRule,
)
from subjects.models import DeviceContext

if TYPE_CHECKING:
    from rules.bound import Bound

R = TypeVar("R", bound=RuleBase)
# The engine holds streams of every kind, so at this boundary a state is of any kind; each
# evaluator in rules.evaluate is typed with its own kind's data.
SampleEvaluator = Callable[["Bound", State[Any], Sample], Result[Any]]
SeenEvaluator = Callable[["Bound", State[Any], Seen], Result[Any]]
TickEvaluator = Callable[["Bound", State[Any], float], Result[Any]]


@dataclass(frozen=True, slots=True)
class KindEntry(Generic[R]):
    """Everything that differs between rule kinds, in one place."""

    spec: type[R]  # the kind's typed parameters (the pydantic model of its YAML)
    bind: Callable[[Bound, R, DeviceContext | None, CreditModifier], None]
    sample: SampleEvaluator  # a reading
    # Late data is replayed for kinds whose state is a function of their ordered input.
    replayed: bool
    # The HJ 212 data flags judged unless the rule names its own (rules/flags.py says why).
    valid_flags: frozenset[str]
    lookback: Callable[[R], float]  # seconds of readings that rebuild its state at start
    summary: Callable[[Bound, float, Sequence[TriggerItem]], str]
    # The metrics whose readings drive a rule: None means every metric, [] none.
    metrics: Callable[[R], list[str] | None] = lambda rule: (
        [rule.selector.metric] if rule.selector.metric else None
    )
    seen: SeenEvaluator | None = None  # a detection
    tick: TickEvaluator | None = None  # the wall clock moved (absence, detection clear)


def _ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


# -- binding: the kind's parameters onto the hot path's plain attributes --------------------


def _bind_held(b: Bound, rule: Any, mod: CreditModifier) -> None:
    b.hold = credit.hold(rule.hold, mod)
    b.keep = credit.hold(rule.keep_firing_for, mod)


def _bind_limit(b: Bound, rule: Any, ctx: DeviceContext | None, zone: str) -> None:
    b.cmp = OPS[rule.op]
    # The same for every credit grade: credit never moves a limit.
    if isinstance(rule.limit, list):
        b.dated = dated(rule.limit, ctx, rule.id, ZoneInfo(zone))
        b.quiet = False  # the limit depends on the date: always evaluate
    else:
        b.limit = resolve(rule.limit, ctx, rule.id)


def _bind_clear(b: Bound, rule: ThresholdRule | WindowRule, ctx: DeviceContext | None) -> None:
    if rule.clear is not None:
        b.clear_cmp = OPS[rule.op]
        b.clear = resolve(rule.clear, ctx, rule.id)


def _offset_s(zone: str) -> float:
    offset = datetime(2025, 1, 1, tzinfo=ZoneInfo(zone)).utcoffset()
    return (offset or timedelta(0)).total_seconds()


def _bind_threshold(
    b: Bound, rule: ThresholdRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    # Hot-path hint for the engine: a threshold without a schedule that is inactive and
    # not breached needs no evaluation at all.
    b.quiet = rule.schedule is None
    _bind_held(b, rule, mod)
    _bind_limit(b, rule, ctx, LIMIT_ZONE)
    _bind_clear(b, rule, ctx)


def _bind_window(
    b: Bound, rule: WindowRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    _bind_held(b, rule, mod)
    _bind_limit(b, rule, ctx, rule.timezone)
    _bind_clear(b, rule, ctx)
    b.agg = rule.agg
    b.window_s = rule.window_s
    b.sliding = rule.align == "sliding"
    if b.sliding:
        b.sample = evaluate.sliding_window
    b.offset_s = _offset_s(rule.timezone)
    b.expected = rule.window_s / rule.expected_interval
    b.min_ratio = rule.min_valid_ratio
    if rule.validity is not None:
        # The day decides when valid hours / required hours reaches 1.
        b.valid_hours = rule.validity.hours
        b.hour_min_readings = rule.validity.minutes_per_hour * 60 / rule.expected_interval
        b.min_ratio = 1.0
        b.sample = evaluate.day_of_hours


def _bind_rate(b: Bound, rule: RateRule, ctx: DeviceContext | None, mod: CreditModifier) -> None:
    _bind_held(b, rule, mod)
    _bind_limit(b, rule, ctx, LIMIT_ZONE)
    b.per = rule.per
    b.max_gap = rule.max_gap


def _bind_absence(
    b: Bound, rule: AbsenceRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    # Absence keeps only the newest data time: the engine tracks it without evaluating.
    b.lazy_last_seen = True
    b.missing_for = credit.hold(rule.missing_for, mod)


def _bind_flatline(
    b: Bound, rule: FlatlineRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    b.duration = credit.hold(rule.duration, mod)
    b.tolerance = rule.tolerance
    b.sample_time_metric = rule.sample_time_metric
    if rule.sample_time_metric is not None:
        b.sample = evaluate.flatline_sampled
    b.min_samples = rule.min_samples


def _bind_composite(
    b: Bound, rule: CompositeRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    _bind_held(b, rule, mod)
    b.match_all = rule.match == "all"
    b.conditions = tuple(
        (c.role, c.metric, OPS[c.op], resolve(c.limit, ctx, rule.id), c.max_age)
        for c in rule.conditions
    )


def _bind_detection(
    b: Bound, rule: DetectionRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    _bind_held(b, rule, mod)
    b.labels = frozenset(rule.labels)
    b.zones = frozenset(rule.zones)
    b.min_score = rule.min_score
    b.clear_after = rule.clear_after


def _bind_flag_share(
    b: Bound, rule: FlagShareRule, ctx: DeviceContext | None, mod: CreditModifier
) -> None:
    b.share_flags = frozenset(rule.flags)
    b.max_share = rule.max_share
    b.min_samples = rule.min_samples
    b.window_s = rule.window_s
    b.offset_s = _offset_s(rule.timezone)


# -- clue summaries -------------------------------------------------------------------------


def _summary(b: Bound, started_at: float, trigger: Sequence[TriggerItem], limit: str) -> str:
    when = _ts(started_at)
    first = trigger[0] if trigger else None
    if first is None:
        return f"{b.title}: since {when}"
    shown = f"{first.value:g}" if first.value is not None else "-"
    return f"{b.title}: {first.device_id} {first.metric} = {shown}{limit} since {when}"


def _with_limit(b: Bound, started_at: float, trigger: Sequence[TriggerItem]) -> str:
    return _summary(b, started_at, trigger, f" (limit {b.limit:g})")


def _plain(b: Bound, started_at: float, trigger: Sequence[TriggerItem]) -> str:
    return _summary(b, started_at, trigger, "")


def _no_data(b: Bound, started_at: float, trigger: Sequence[TriggerItem]) -> str:
    return f"{b.title}: no data from {b.scope} since {_ts(started_at)}"


# -- history a restart replays ------------------------------------------------------------


def _none(rule: RuleBase) -> float:
    return 0.0


def _flatline_metrics(rule: FlatlineRule) -> list[str] | None:
    if rule.sample_time_metric and rule.selector.metric:
        return sorted({rule.selector.metric, rule.sample_time_metric})
    return [rule.selector.metric] if rule.selector.metric else None


def _held_span(rule: ThresholdRule | WindowRule | RateRule | CompositeRule) -> float:
    return rule.hold + rule.keep_firing_for


KINDS: dict[RuleKind, KindEntry[Any]] = {
    RuleKind.THRESHOLD: KindEntry(
        spec=ThresholdRule,
        bind=_bind_threshold,
        sample=evaluate.threshold,
        replayed=True,
        valid_flags=JUDGED,
        lookback=_held_span,
        summary=_with_limit,
    ),
    RuleKind.WINDOW: KindEntry(
        spec=WindowRule,
        bind=_bind_window,
        sample=evaluate.window,
        replayed=True,
        valid_flags=JUDGED,
        lookback=lambda r: 2 * r.window_s + _held_span(r),
        summary=_with_limit,
    ),
    RuleKind.RATE: KindEntry(
        spec=RateRule,
        bind=_bind_rate,
        sample=evaluate.rate,
        replayed=True,
        valid_flags=JUDGED,
        lookback=lambda r: _held_span(r) + r.max_gap,
        summary=_with_limit,
    ),
    RuleKind.ABSENCE: KindEntry(
        spec=AbsenceRule,
        bind=_bind_absence,
        sample=evaluate.absence_sample,
        # Any packet shows the device is reporting; whether its data is valid is another rule.
        valid_flags=EVERY,
        replayed=False,
        lookback=_none,
        summary=_no_data,
        tick=evaluate.absence_tick,
    ),
    RuleKind.FLATLINE: KindEntry(
        spec=FlatlineRule,
        bind=_bind_flatline,
        sample=evaluate.flatline,
        replayed=True,
        valid_flags=JUDGED,
        lookback=lambda r: r.duration * 2,
        summary=_plain,
        metrics=_flatline_metrics,
    ),
    RuleKind.COMPOSITE: KindEntry(
        spec=CompositeRule,
        bind=_bind_composite,
        sample=evaluate.composite,
        replayed=True,
        valid_flags=JUDGED,
        lookback=lambda r: _held_span(r) + max(c.max_age for c in r.conditions),
        summary=_plain,
        metrics=lambda r: sorted({c.metric for c in r.conditions}),
    ),
    RuleKind.DETECTION: KindEntry(
        spec=DetectionRule,
        bind=_bind_detection,
        sample=evaluate.ignore,
        replayed=False,
        valid_flags=EVERY,
        lookback=_none,
        summary=_plain,
        metrics=lambda r: [],
        seen=evaluate.detection,
        tick=evaluate.detection_tick,
    ),
    RuleKind.FLAG_SHARE: KindEntry(
        spec=FlagShareRule,
        bind=_bind_flag_share,
        sample=evaluate.flag_share,
        replayed=True,
        # It counts flags, so it must see them all.
        valid_flags=EVERY,
        lookback=lambda r: 2 * r.window_s,
        summary=_plain,
    ),
}


def entry_of(kind: str) -> KindEntry[Any]:
    """The entry of a rule's `kind` tag (a `RuleKind` value)."""
    return KINDS[RuleKind(kind)]
