"""Pure evaluation: `evaluate(bound, state, input, now) -> (state, transitions)`, no I/O, no clock.

Times are epoch seconds (floats) on the hot path. States are immutable tuples; an
evaluation that changes nothing returns the very same state object.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, NamedTuple, TypeAlias, TypeVar

if TYPE_CHECKING:
    from rules.bound import Bound


class Sample(NamedTuple):
    """A reading as the evaluator sees it; `role` is the device's role (composites)."""

    t: float
    device_id: str
    metric: str
    value: float
    role: str = ""
    flag: str = "N"


class Seen(NamedTuple):
    """A detection as the evaluator sees it."""

    t: float
    device_id: str
    label: str
    zone: str | None
    score: float
    evidence_id: str | None


class Tick(NamedTuple):
    """The wall clock moved (absence and detection-clear rules)."""

    now: float


class TriggerItem(NamedTuple):
    """One value that made a clue: a reading key, a window aggregate or a detection."""

    t: float
    device_id: str
    metric: str
    value: float | None
    until: float | None = None  # end of a window aggregate
    evidence_id: str | None = None


class ClueAction(StrEnum):
    """What the store does to a clue: the evaluator's open/resolve, and what a replay of
    late data finds (see `rules.engine.ClueOp`)."""

    OPEN = "open"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    WITHDRAW = "withdraw"
    CLOSED = "closed"


OPEN: Final = ClueAction.OPEN
RESOLVE: Final = ClueAction.RESOLVE


class Transition(NamedTuple):
    """`open` or `resolve` of the episode that started at `started_at` (event time)."""

    kind: Literal[ClueAction.OPEN, ClueAction.RESOLVE]
    at: float
    started_at: float
    trigger: tuple[TriggerItem, ...]


K = TypeVar("K")


class State(NamedTuple, Generic[K]):
    """Phase of the stream (inactive / pending / firing) and the kind's own data in `k`
    (None until the kind has some; its type is the kind's, below)."""

    pending_since: float | None = None
    firing_since: float | None = None
    last_breach: float | None = None
    trigger: tuple[TriggerItem, ...] = ()
    k: K | None = None

    @property
    def phase(self) -> str:
        if self.firing_since is not None:
            return "firing"
        return "pending" if self.pending_since is not None else "inactive"


# The kinds' own data: plain tuples, which the hot path builds fastest.
Nothing: TypeAlias = None  # threshold and detection keep nothing of their own
Points: TypeAlias = tuple[tuple[float, float], ...]  # sliding window: (t, value) in it
Bucket: TypeAlias = tuple[int, float, int, float, float]  # aligned window: n, sum, count, min, max
# A day of hourly means: day, hour, hour sum, hour count, valid hours, sum of means, min, max.
Day: TypeAlias = tuple[int, int, float, int, int, float, float, float]
Previous: TypeAlias = tuple[float, float]  # rate: the last (t, value)
Run: TypeAlias = tuple[float, float, float, int]  # flatline: start, min, max, samples
Pending: TypeAlias = tuple[float, float | None, float | None]  # (t, value, sample time)
Sampled: TypeAlias = tuple[Run | None, float | None, Pending | None]  # run, counted, pending
Latest: TypeAlias = tuple[tuple[float, float, str] | None, ...]  # composite: per condition
LastSeen: TypeAlias = float  # absence: when data last arrived
Shares: TypeAlias = tuple[int, int, int]  # flag share: period, readings, flagged

INITIAL: State[Any] = State()
NO_TRANSITIONS: tuple[Transition, ...] = ()
Result: TypeAlias = tuple[State[K], tuple[Transition, ...]]


def _with_k(st: State[K], k: K | None) -> State[K]:
    # Faster than NamedTuple._replace on the hot path.
    return State(st.pending_since, st.firing_since, st.last_breach, st.trigger, k)


def step(
    b: Bound, st: State[K], t: float, breach: bool | None, item: TriggerItem | None, k: K | None
) -> Result[K]:
    """The common machine: inactive -> pending -> firing -> resolved, with hold and keep."""
    if breach is None:
        return (st if k is st.k else _with_k(st, k)), NO_TRANSITIONS
    if breach:
        pend = st.pending_since if st.pending_since is not None else t
        trig = st.trigger
        if item is not None and len(trig) < b.cap:
            trig = (*trig, item)
        if st.firing_since is not None:
            return State(pend, st.firing_since, t, trig, k), NO_TRANSITIONS
        if t - pend >= b.hold:
            return State(pend, pend, t, trig, k), (Transition(OPEN, t, pend, trig),)
        return State(pend, None, t, trig, k), NO_TRANSITIONS
    if st.firing_since is not None:
        if b.keep and st.last_breach is not None and t - st.last_breach < b.keep:
            return (st if k is st.k else _with_k(st, k)), NO_TRANSITIONS
        return State(k=k), (Transition(RESOLVE, t, st.firing_since, st.trigger),)
    if st.pending_since is not None:
        return State(k=k), NO_TRANSITIONS
    return (st if k is st.k else _with_k(st, k)), NO_TRANSITIONS


def _scheduled(b: Bound, t: float) -> bool:
    return b.schedule is None or b.schedule.active(t)


def threshold(b: Bound, st: State[Nothing], s: Sample) -> Result[Nothing]:
    v = s.value
    if not _scheduled(b, s.t):
        breach = False
    elif st.firing_since is not None and b.clear_cmp is not None:
        breach = b.clear_cmp(v, b.clear)  # type: ignore[arg-type]
    else:
        limit = b.limit_at(s.t) if b.dated is not None else b.limit
        if limit is None:
            return step(b, st, s.t, None, None, st.k)  # no limit in force on this date
        breach = b.cmp(v, limit)
    item = TriggerItem(s.t, s.device_id, s.metric, v) if breach else None
    return step(b, st, s.t, breach, item, st.k)


def _aggregate(agg: str, total: float, count: int, lo: float, hi: float) -> float:
    if agg == "avg":
        return total / count
    if agg == "sum":
        return total
    if agg == "min":
        return lo
    if agg == "max":
        return hi
    return float(count)


def _window_decision(
    b: Bound, st: State[Any], start: float, value: float, ratio: float
) -> bool | None:
    if ratio < b.min_ratio:
        return None  # too little valid data: the window decides nothing
    if not _scheduled(b, start):
        return False
    if st.firing_since is not None and b.clear_cmp is not None:
        return b.clear_cmp(value, b.clear)  # type: ignore[arg-type]
    # A dated limit is the one in force on the day the window judges (its start).
    limit = b.limit_at(start) if b.dated is not None else b.limit
    if limit is None:
        return None
    return b.cmp(value, limit)


def sliding_window(b: Bound, st: State[Points], s: Sample) -> Result[Points]:
    lo_t = s.t - b.window_s
    kept = (*(p for p in st.k or () if p[0] > lo_t), (s.t, s.value))
    values = [p[1] for p in kept]
    value = _aggregate(b.agg, math.fsum(values), len(values), min(values), max(values))
    breach = _window_decision(b, st, s.t, value, len(values) / b.expected)
    item = TriggerItem(kept[0][0], s.device_id, f"{s.metric}:{b.agg}", value, s.t)
    return step(b, st, s.t, breach, item, kept)


def window(b: Bound, st: State[Bucket], s: Sample) -> Result[Bucket]:
    """An hour, a day or a fixed span aligned to the zone, decided when a later one starts
    (sliding windows and days of hourly means have their own evaluators, bound instead)."""
    bucket = math.floor((s.t + b.offset_s) / b.window_s)
    acc = st.k
    if acc is None or acc[0] == bucket:
        if acc is None:
            acc = (bucket, s.value, 1, s.value, s.value)
        else:
            acc = (bucket, acc[1] + s.value, acc[2] + 1, min(acc[3], s.value), max(acc[4], s.value))
        return _with_k(st, acc), NO_TRANSITIONS
    if bucket < acc[0]:
        return st, NO_TRANSITIONS  # an older window is closed; the engine orders late data
    # A reading of a later window closes the current one: that window decides.
    start = acc[0] * b.window_s - b.offset_s
    value = _aggregate(b.agg, acc[1], acc[2], acc[3], acc[4])
    breach = _window_decision(b, st, start, value, acc[2] / b.expected)
    fresh = (bucket, s.value, 1, s.value, s.value)
    item = TriggerItem(start, s.device_id, f"{s.metric}:{b.agg}", value, start + b.window_s)
    st2, out = step(b, st, start, breach, item, fresh)
    if out and out[0].kind is OPEN:
        # Decided when the window closed; the episode started where the window began.
        out = (out[0]._replace(at=start + b.window_s),)
    return st2, out


def day_of_hours(b: Bound, st: State[Day], s: Sample) -> Result[Day]:
    """A day judged on its valid hourly means (GB 3095 data validity), decided at its end.

    State: (day, hour, hour sum, hour count, valid hours, sum of their means, min, max).
    An hour is valid with `hour_min_readings` readings (45 minutes of data); the day is
    judged on the mean (min, max, sum, count) of valid hourly means when it has at least
    `valid_hours` of them, else it decides nothing.
    """
    shifted = s.t + b.offset_s
    day = math.floor(shifted / 86400.0)
    hour = math.floor(shifted / 3600.0)
    v = s.value
    acc = st.k
    if acc is None:
        return _with_k(st, (day, hour, v, 1, 0, 0.0, math.inf, -math.inf)), NO_TRANSITIONS
    if hour < acc[1]:
        return st, NO_TRANSITIONS  # an older hour is closed; the engine orders late data
    if hour == acc[1]:
        acc = (day, hour, acc[2] + v, acc[3] + 1, acc[4], acc[5], acc[6], acc[7])
        return _with_k(st, acc), NO_TRANSITIONS
    # The hour closed: keep its mean if it had enough data.
    n, total, lo, hi = acc[4], acc[5], acc[6], acc[7]
    if acc[3] >= b.hour_min_readings - 1e-9:
        mean = acc[2] / acc[3]
        n, total, lo, hi = n + 1, total + mean, min(lo, mean), max(hi, mean)
    if day == acc[0]:
        return _with_k(st, (day, hour, v, 1, n, total, lo, hi)), NO_TRANSITIONS
    start = acc[0] * 86400.0 - b.offset_s
    fresh: Day = (day, hour, v, 1, 0, 0.0, math.inf, -math.inf)
    if n == 0:
        return step(b, st, start, None, None, fresh)
    value = _aggregate(b.agg, total, n, lo, hi)
    breach = _window_decision(b, st, start, value, n / b.valid_hours)
    item = TriggerItem(start, s.device_id, f"{s.metric}:{b.agg}", value, start + 86400.0)
    st2, out = step(b, st, start, breach, item, fresh)
    if out and out[0].kind is OPEN:
        out = (out[0]._replace(at=start + 86400.0),)
    return st2, out


def rate(b: Bound, st: State[Previous], s: Sample) -> Result[Previous]:
    prev = st.k
    k = (s.t, s.value)
    if prev is None or s.t <= prev[0] or s.t - prev[0] > b.max_gap:
        return step(b, st, s.t, None, None, k)
    rate = (s.value - prev[1]) / (s.t - prev[0]) * b.per
    breach = _scheduled(b, s.t) and b.cmp(rate, b.limit)
    if not breach and st.pending_since is None:
        return State(k=k), NO_TRANSITIONS
    return step(b, st, s.t, breach, TriggerItem(s.t, s.device_id, s.metric, s.value), k)


def flatline(b: Bound, st: State[Run], s: Sample) -> Result[Run]:
    run = st.k
    v = s.value
    if run is None:
        k = (s.t, v, v, 1)
    else:
        lo, hi = min(run[1], v), max(run[2], v)
        k = (run[0], lo, hi, run[3] + 1) if hi - lo <= b.tolerance else (s.t, v, v, 1)
    flat = k[3] >= b.min_samples and s.t - k[0] >= b.duration and _scheduled(b, s.t)
    item = TriggerItem(s.t, s.device_id, s.metric, v)
    if flat and st.firing_since is None:
        # The episode began when the value stopped changing, not when we noticed.
        st = State(k[0], None, st.last_breach, st.trigger, st.k)
    return step(b, st, s.t, flat, item, k)


def _flatline_run(b: Bound, run: Run | None, t: float, v: float) -> Run:
    if run is None:
        return (t, v, v, 1)
    lo, hi = min(run[1], v), max(run[2], v)
    return (run[0], lo, hi, run[3] + 1) if hi - lo <= b.tolerance else (t, v, v, 1)


def flatline_sampled(b: Bound, st: State[Sampled], s: Sample) -> Result[Sampled]:
    """Flatline over analyser samples: readings repeating one SampleTime are one sample.

    A COD analyser measures in cycles and the logger repeats the last result until the next
    one, so only a value under a new sample time counts. The value and its sample time of one
    packet share a timestamp and may come in either order: they are paired by time.
    State: (run, last counted sample time, pending (t, value | None, sample time | None)).
    """
    run, counted, pend = st.k if st.k is not None else (None, None, None)
    is_time = s.metric == b.sample_time_metric
    if pend is not None and pend[0] == s.t:
        pend = (s.t, pend[1], s.value) if is_time else (s.t, s.value, pend[2])
    else:
        if pend is not None and pend[1] is not None:
            # The previous time's value came with no sample time: count it as a sample.
            run = _flatline_run(b, run, pend[0], pend[1])
        pend = (s.t, None, s.value) if is_time else (s.t, s.value, None)
    t, v, sample_time = pend
    if v is None or sample_time is None:
        return _with_k(st, (run, counted, pend)), NO_TRANSITIONS
    if sample_time == counted:
        # The same sample repeated between analyser cycles: not a new reading of the water.
        return _with_k(st, (run, counted, None)), NO_TRANSITIONS
    run = _flatline_run(b, run, t, v)
    k: Sampled = (run, sample_time, None)
    flat = run[3] >= b.min_samples and t - run[0] >= b.duration and _scheduled(b, t)
    if flat and st.firing_since is None:
        st = State(run[0], None, st.last_breach, st.trigger, st.k)
    metric = (b.rule.selector.metric or s.metric) if is_time else s.metric
    return step(b, st, t, flat, TriggerItem(t, s.device_id, metric, v), k)


def composite(b: Bound, st: State[Latest], s: Sample) -> Result[Latest]:
    latest: list[tuple[float, float, str] | None] = list(st.k or (None,) * len(b.conditions))
    for i, (role, metric, _cmp, _limit, _age) in enumerate(b.conditions):
        if role == s.role and metric == s.metric:
            latest[i] = (s.t, s.value, s.device_id)
    k = tuple(latest)
    results = []
    for (_role, _metric, cmp, limit, age), cur in zip(b.conditions, k, strict=True):
        results.append(cur is not None and s.t - cur[0] <= age and cmp(cur[1], limit))
    breach = (all(results) if b.match_all else any(results)) and _scheduled(b, s.t)
    item = TriggerItem(s.t, s.device_id, s.metric, s.value)
    return step(b, st, s.t, breach, item, k)


def absence_sample(b: Bound, st: State[LastSeen], s: Sample) -> Result[LastSeen]:
    last = st.k
    if last is not None and s.t <= last:
        return st, NO_TRANSITIONS  # older than what we have seen: data was not missing then
    if st.firing_since is None:
        return State(k=s.t), NO_TRANSITIONS  # data arrives: nothing missing, nothing pending
    return step(b, st, s.t, False, None, s.t)


def absence_tick(b: Bound, st: State[LastSeen], now: float) -> Result[LastSeen]:
    last = st.k
    if last is None or st.firing_since is not None:
        return st, NO_TRANSITIONS
    if now - last < b.missing_for or not _scheduled(b, now):
        return st, NO_TRANSITIONS
    # Data has been missing since the last reading: that is when the episode began.
    st = State(last, None, st.last_breach, st.trigger, last)
    return step(b, st, now, True, TriggerItem(last, b.scope, "", None), last)


def detection(b: Bound, st: State[Nothing], d: Seen) -> Result[Nothing]:
    if d.label not in b.labels or d.score < b.min_score:
        return st, NO_TRANSITIONS
    if b.zones and d.zone not in b.zones:
        return st, NO_TRANSITIONS
    if not _scheduled(b, d.t):
        return st, NO_TRANSITIONS
    item = TriggerItem(d.t, d.device_id, d.label, d.score, evidence_id=d.evidence_id)
    return step(b, st, d.t, True, item, st.k)


def detection_tick(b: Bound, st: State[Nothing], now: float) -> Result[Nothing]:
    last = st.last_breach
    if last is None or now - last < b.clear_after:
        return st, NO_TRANSITIONS
    # Resolved (or a pending episode dropped) at the moment the object was last seen + grace.
    return step(b, st, last + b.clear_after, False, None, st.k)


def flag_share(b: Bound, st: State[Shares], s: Sample) -> Result[Shares]:
    """Share of an aligned period's readings carrying a counted flag; decided at its end."""
    bucket = math.floor((s.t + b.offset_s) / b.window_s)
    hit = 1 if s.flag in b.share_flags else 0
    acc = st.k
    if acc is None or acc[0] == bucket:
        acc = (bucket, 1, hit) if acc is None else (bucket, acc[1] + 1, acc[2] + hit)
        return _with_k(st, acc), NO_TRANSITIONS
    if bucket < acc[0]:
        return st, NO_TRANSITIONS  # an older period is closed; the engine orders late data
    start = acc[0] * b.window_s - b.offset_s
    share = acc[2] / acc[1]
    enough = acc[1] >= b.min_samples
    breach = (share > b.max_share and _scheduled(b, start)) if enough else None
    item = TriggerItem(start, s.device_id, "flag_share", share, start + b.window_s)
    st2, out = step(b, st, start, breach, item, (bucket, 1, hit))
    if out and out[0].kind is OPEN:
        out = (out[0]._replace(at=start + b.window_s),)
    return st2, out


def ignore(b: Bound, st: State[Any], s: Sample) -> Result[Any]:
    return st, NO_TRANSITIONS


def evaluate(b: Bound, st: State[Any], inp: Sample | Seen | Tick, now: float) -> Result[Any]:
    """Apply one input to one bound rule's state. `now` is the wall clock, for ticks only."""
    entry = b.entry
    if type(inp) is Sample:
        return b.sample(b, st, inp)
    if type(inp) is Seen:
        return entry.seen(b, st, inp) if entry.seen is not None else (st, NO_TRANSITIONS)
    return entry.tick(b, st, now) if entry.tick is not None else (st, NO_TRANSITIONS)
