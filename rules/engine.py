"""The rule engine: indexes rules by selector, keeps per-stream state, orders late data.

It is synchronous and does no I/O: the service feeds it and persists the `ClueOp`s it
returns. Streams are keyed by fingerprint (rule + device, or rule + subject for composites).
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ingest.models import DeviceStatus, Reading
from rules.bound import Bound, MissingAttributeError
from rules.evaluate import (
    INITIAL,
    NO_TRANSITIONS,
    ClueAction,
    Sample,
    Seen,
    State,
    Tick,
    Transition,
    TriggerItem,
    evaluate,
)
from rules.settings import CreditModifier
from rules.spec import AbsenceRule, CompositeRule, DetectionRule, FlatlineRule, Rule, Selector
from subjects.models import DeviceContext, DeviceDirectory, Grade
from video.models import Detection

log = logging.getLogger(__name__)


class ClueOp(NamedTuple):
    """What the store must do to the clue of `bound.fingerprint` that started at `started_at`.

    open: a new episode; resolve: it ended at `at`; reopen: a late reading showed it had not
    ended; withdraw: a late reading showed it never happened (kept, marked withdrawn);
    closed: a late reading revealed a whole past episode that ended at `at`.
    """

    action: ClueAction
    bound: Bound
    started_at: float
    at: float
    trigger: tuple[TriggerItem, ...]


# A history entry is either the Reading itself, for a reading that changed nothing (no
# allocation on the hot path: most readings), or a plain tuple (event time, the reading,
# the device's role for composites, state after it, transitions it produced).
_Full = tuple[float, Reading, str, State[Any], tuple[Transition, ...]]
_Entry = Reading | _Full


def _entry_order(e: _Entry) -> tuple[float, str, str]:
    r = e if isinstance(e, Reading) else e[1]
    return (r.time.timestamp(), r.device_id, r.metric)


class Stream:
    """State of one rule on one device (or subject), with the recent history for replay."""

    __slots__ = ("base", "bound", "history", "last_t", "state")

    def __init__(self, bound: Bound) -> None:
        self.bound = bound
        self.state: State[Any] = INITIAL
        self.base: State[Any] = INITIAL  # state before history[0]
        self.history: deque[_Entry] = deque()
        self.last_t = float("-inf")


@dataclass(frozen=True, slots=True)
class OpenClue:
    """An open clue loaded from the database at start."""

    fingerprint: str
    started_at: float


def _matches(sel: Selector, ctx: DeviceContext | None) -> bool:
    if not sel.needs_subject:
        return True
    if ctx is None:
        return False
    if sel.role and sel.role != ctx.role:
        return False
    if sel.industry and ctx.industry not in sel.industry:
        return False
    if sel.grid and ctx.grid not in sel.grid:
        return False
    if any(ctx.attributes.get(k) != v for k, v in sel.attributes.items()):
        return False
    return all(tag in ctx.tags for tag in sel.tags)


def _episodes(open_start: float | None, trans: Iterable[Transition]) -> dict[float, Any]:
    eps: dict[float, Any] = {}
    if open_start is not None:
        eps[open_start] = None
    for tr in trans:
        eps[tr.started_at] = tr if tr.kind is ClueAction.OPEN else tr.at
    return eps


def _is_open(end: Any) -> bool:
    return end is None or isinstance(end, Transition)


class Engine:
    """Feeds inputs to the streams that can match them and returns clue operations."""

    def __init__(
        self,
        rules: Sequence[Rule],
        directory: DeviceDirectory,
        credit: Mapping[Grade, CreditModifier],
        allowed_lateness_s: float,
        max_trigger_values: int = 50,
        on_late_dropped: Callable[[str], None] | None = None,
        on_evaluations: Callable[[int], None] | None = None,
        on_rule_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.directory = directory
        self.credit = credit
        self.lateness = allowed_lateness_s
        self.cap = max_trigger_values
        self._on_late = on_late_dropped
        self._on_evals = on_evaluations
        self._on_error = on_rule_error
        self.by_metric: dict[str, list[Rule]] = {}
        self.any_metric: list[Rule] = []
        self.detection_rules: list[DetectionRule] = []
        self.absence_rules: list[AbsenceRule] = []
        for rule in self.rules:
            if isinstance(rule, CompositeRule):
                for metric in {c.metric for c in rule.conditions}:
                    self.by_metric.setdefault(metric, []).append(rule)
            elif isinstance(rule, DetectionRule):
                self.detection_rules.append(rule)
            elif rule.selector.metric is None:
                self.any_metric.append(rule)
            else:
                self.by_metric.setdefault(rule.selector.metric, []).append(rule)
            if isinstance(rule, FlatlineRule) and rule.sample_time_metric:
                # The analyser's sample time feeds the same stream as the value it dates.
                self.by_metric.setdefault(rule.sample_time_metric, []).append(rule)
            if isinstance(rule, AbsenceRule):
                self.absence_rules.append(rule)
        self.streams: dict[str, Stream] = {}
        self.ticked: dict[str, Stream] = {}  # absence and detection streams
        # device -> metric -> the streams a reading of it feeds (nested: no key tuple).
        self._entries: dict[str, dict[str, tuple[tuple[Stream, str], ...]]] = {}
        self._contexts: dict[str, DeviceContext | None] = {}
        self._open_at_start: dict[str, float] = {}
        self._warned: set[tuple[str, str]] = set()

    # -- index ------------------------------------------------------------------------

    def context(self, device_id: str) -> DeviceContext | None:
        try:
            return self._contexts[device_id]
        except KeyError:
            ctx = self._contexts[device_id] = self.directory.context(device_id)
            return ctx

    def invalidate_directory(self) -> None:
        """Bindings may have changed: look devices up again (states are kept)."""
        self._contexts.clear()
        self._entries.clear()

    def _stream(self, rule: Rule, scope: str, ctx: DeviceContext | None) -> Stream | None:
        try:
            bound = Bound(rule, scope, ctx, self.credit, self.cap)
        except MissingAttributeError as err:
            if (rule.id, scope) not in self._warned:
                self._warned.add((rule.id, scope))
                log.warning("%s (device or subject %s); the rule skips it", err, scope)
            return None
        stream = self.streams.get(bound.fingerprint)
        if stream is None:
            stream = self.streams[bound.fingerprint] = Stream(bound)
            started = self._open_at_start.pop(bound.fingerprint, None)
            if started is not None:
                stream.state = stream.base = State(started, started, started)
        else:
            stream.bound = bound
        if bound.entry.tick is not None:
            self.ticked[bound.fingerprint] = stream
        return stream

    def _build_entries(self, device_id: str, metric: str) -> tuple[tuple[Stream, str], ...]:
        ctx = self.context(device_id)
        found: list[tuple[Stream, str]] = []
        for rule in (*self.by_metric.get(metric, ()), *self.any_metric):
            if not _matches(rule.selector, ctx):
                continue
            if isinstance(rule, CompositeRule):
                if ctx is None or not any(
                    c.role == ctx.role and c.metric == metric for c in rule.conditions
                ):
                    continue
                stream = self._stream(rule, ctx.credit_code, ctx)
                role = ctx.role
            else:
                stream = self._stream(rule, device_id, ctx)
                role = ""
            if stream is not None:
                found.append((stream, role))
        entries = tuple(found)
        self._entries.setdefault(device_id, {})[metric] = entries
        return entries

    def _failed(self, stream: Stream, err: Exception) -> None:
        """A rule raised on one stream: that input is skipped for that stream only; the
        other rules' transitions of the batch stand."""
        if self._on_error is not None:
            self._on_error(stream.bound.rule_id, err)
        else:
            log.error("rule %s failed on %s: %s", stream.bound.rule_id, stream.bound.scope, err)

    # -- inputs -----------------------------------------------------------------------

    def on_readings(self, readings: Iterable[Reading]) -> list[ClueOp]:
        ops: list[ClueOp] = []
        entries_of = self._entries
        lateness = self.lateness
        evals = 0
        for r in readings:
            by_metric = entries_of.get(r.device_id)
            entries = by_metric.get(r.metric) if by_metric is not None else None
            if entries is None:
                entries = self._build_entries(r.device_id, r.metric)
            if not entries:
                continue
            t = r.time.timestamp()
            value = r.value
            flag = r.flag
            s: Sample | None = None
            for stream, role in entries:
                b = stream.bound
                if flag not in b.valid_flags:
                    # Data marked invalid (maintenance, calibration, fault ...) is no basis
                    # for this rule: skipped, so windows count only valid data.
                    continue
                evals += 1
                try:
                    if t > stream.last_t:
                        # In order, the common case: evaluate, remember for replay, prune.
                        st = stream.state
                        if b.lazy_last_seen and st.firing_since is None:
                            # Absence: data arrived and nothing fires; tick() reads last_t.
                            stream.last_t = t
                            continue
                        if (
                            b.quiet
                            and st.pending_since is None
                            and st.firing_since is None
                            and not b.cmp(value, b.limit)
                        ):
                            out = NO_TRANSITIONS  # an inactive threshold stays inactive
                            entry: _Entry = r
                        else:
                            if role:
                                inp = Sample(t, r.device_id, r.metric, value, role, flag)
                            else:
                                if s is None:
                                    s = Sample(t, r.device_id, r.metric, value, "", flag)
                                inp = s
                            st, out = b.sample(b, st, inp)
                            entry = r if st is stream.state and not role else (t, r, role, st, out)
                            stream.state = st
                        stream.last_t = t
                        if b.replayed:
                            hist = stream.history
                            hist.append(entry)
                            horizon = t - lateness
                            while True:
                                head = hist[0]
                                if isinstance(head, Reading):
                                    if head.time.timestamp() >= horizon:
                                        break
                                    hist.popleft()  # changed nothing: base stays
                                else:
                                    if head[0] >= horizon:
                                        break
                                    hist.popleft()
                                    stream.base = head[3]
                        for tr in out:
                            ops.append(ClueOp(tr.kind, b, tr.started_at, tr.at, tr.trigger))
                    else:
                        self._apply_out_of_order(stream, r, t, role, ops)
                except Exception as err:  # one rule's bug must not cost the others
                    self._failed(stream, err)
        if self._on_evals is not None and evals:
            self._on_evals(evals)
        return ops

    def _apply_out_of_order(
        self, stream: Stream, r: Reading, t: float, role: str, ops: list[ClueOp]
    ) -> None:
        b = stream.bound
        s = Sample(t, r.device_id, r.metric, r.value, role, r.flag)
        if not b.replayed:
            st, out = evaluate(b, stream.state, s, t)
            stream.state = st
            for tr in out:
                ops.append(ClueOp(tr.kind, b, tr.started_at, tr.at, tr.trigger))
            return
        if t < stream.last_t - self.lateness:
            if self._on_late is not None:
                self._on_late(b.rule_id)
            return
        self._insert_late(stream, r, s, ops)

    def _state_before(self, stream: Stream, i: int) -> State[Any]:
        """State before history[i]: a Reading entry changed nothing, so look further back."""
        hist = stream.history
        for j in range(i - 1, -1, -1):
            e = hist[j]
            if not isinstance(e, Reading):
                return e[3]
        return stream.base

    def _insert_late(self, stream: Stream, r: Reading, s: Sample, ops: list[ClueOp]) -> None:
        hist = stream.history
        order = (s.t, r.device_id, r.metric)
        i = bisect.bisect_left(hist, order, key=_entry_order)
        if i < len(hist) and _entry_order(hist[i]) == order:
            return  # the same reading again (redelivery): nothing new
        b = stream.bound
        before = self._state_before(stream, i)
        tail = list(hist)[i:]
        old = [tr for e in tail if not isinstance(e, Reading) for tr in e[4]]
        while len(hist) > i:
            hist.pop()
        replay: list[tuple[Reading, str]] = [(r, s.role)]
        for e in tail:
            replay.append((e, "") if isinstance(e, Reading) else (e[1], e[2]))
        st = before
        new: list[Transition] = []
        for reading, role in replay:
            t = reading.time.timestamp()
            inp = Sample(t, reading.device_id, reading.metric, reading.value, role, reading.flag)
            st, out = evaluate(b, st, inp, t)
            hist.append((t, reading, role, st, out))
            new += out
        stream.state = st
        if old == new:
            return
        # The late reading changed history: make the stored episodes match the replay.
        open_start = before.firing_since
        was, now = _episodes(open_start, old), _episodes(open_start, new)
        closing: list[ClueOp] = []
        reopening: list[ClueOp] = []
        opening: list[ClueOp] = []
        for start, end in sorted(was.items()):
            if start not in now:
                closing.append(ClueOp(ClueAction.WITHDRAW, b, start, s.t, ()))
            elif not _is_open(now[start]) and end != now[start]:
                closing.append(ClueOp(ClueAction.RESOLVE, b, start, now[start], ()))
            elif _is_open(now[start]) and not _is_open(end):
                reopening.append(ClueOp(ClueAction.REOPEN, b, start, s.t, ()))
        for start, end in sorted(now.items()):
            if start in was:
                continue
            opened = next(tr for tr in new if tr.kind is ClueAction.OPEN and tr.started_at == start)
            if _is_open(end):
                opening.append(ClueOp(ClueAction.OPEN, b, start, opened.at, opened.trigger))
            else:
                # Recorded as one closed episode: it may predate the fingerprint's open one.
                closing.append(ClueOp(ClueAction.CLOSED, b, start, end, opened.trigger))
        # Closing first: the table allows one open clue per fingerprint.
        ops += closing
        ops += reopening
        ops += opening

    def on_detections(self, detections: Iterable[Detection]) -> list[ClueOp]:
        ops: list[ClueOp] = []
        for d in detections:
            ctx = self.context(d.camera_id)
            seen = Seen(d.time.timestamp(), d.camera_id, d.label, d.zone, d.score, d.evidence_id)
            for rule in self.detection_rules:
                if not _matches(rule.selector, ctx):
                    continue
                stream = self._stream(rule, d.camera_id, ctx)
                if stream is not None:
                    self._run(stream, stream.state, seen, seen.t, ops)
        return ops

    def on_status(self, status: DeviceStatus) -> None:
        """An offline device is watched by absence rules even if it sent nothing since start."""
        if status.online:
            return
        ctx = self.context(status.device_id)
        t = status.time.timestamp()
        for rule in self.absence_rules:
            if not _matches(rule.selector, ctx):
                continue
            stream = self._stream(rule, status.device_id, ctx)
            if stream is not None and stream.state.k is None:
                stream.state = stream.state._replace(k=t)

    def watch_absence(self, last_seen: Mapping[tuple[str, str | None], float]) -> None:
        """At start: (device, metric or None) -> last data time, for absence rules."""
        for (device_id, metric), t in last_seen.items():
            ctx = self.context(device_id)
            for rule in self.absence_rules:
                if rule.selector.metric != metric or not _matches(rule.selector, ctx):
                    continue
                stream = self._stream(rule, device_id, ctx)
                if stream is not None and (stream.state.k is None or stream.state.k < t):
                    stream.state = stream.state._replace(k=t)

    def tick(self, now: float) -> list[ClueOp]:
        ops: list[ClueOp] = []
        tick = Tick(now)
        for stream in self.ticked.values():
            st = stream.state
            if stream.bound.lazy_last_seen and (st.k is None or stream.last_t > st.k):
                st = State(
                    st.pending_since, st.firing_since, st.last_breach, st.trigger, stream.last_t
                )
            self._run(stream, st, tick, now, ops)
        return ops

    def _run(
        self, stream: Stream, st: State[Any], inp: Seen | Tick, now: float, ops: list[ClueOp]
    ) -> None:
        """One detection or tick on one stream; a rule that raises is marked, not fatal."""
        try:
            st, out = evaluate(stream.bound, st, inp, now)
        except Exception as err:
            self._failed(stream, err)
            return
        stream.state = st
        for tr in out:
            ops.append(ClueOp(tr.kind, stream.bound, tr.started_at, tr.at, tr.trigger))

    # -- restart ----------------------------------------------------------------------

    def restore(self, readings: Iterable[Reading], open_clues: Iterable[OpenClue]) -> list[ClueOp]:
        """Rebuild state from stored readings (in time order) and the open clues.

        Returns the opens the replay finds that the database lacks (a crash between a
        reading's commit and its clue's): the store inserts them idempotently.
        """
        self.on_readings(readings)  # transitions of the past are already in the database
        opened: dict[str, float] = {c.fingerprint: c.started_at for c in open_clues}
        ops: list[ClueOp] = []
        for fp, stream in self.streams.items():
            st = stream.state
            started = opened.pop(fp, None)
            if started is not None:
                # The stored clue is the episode: keep it open under its own start.
                pend = st.pending_since if st.firing_since is not None else started
                stream.state = st._replace(pending_since=pend, firing_since=started)
                # Replays start from the stored episode, not from a history that lacks it.
                stream.base = stream.state
                stream.history.clear()
            elif st.firing_since is not None and stream.bound.replayed:
                ops.append(
                    ClueOp(
                        ClueAction.OPEN, stream.bound, st.firing_since, stream.last_t, st.trigger
                    )
                )
        # Open clues of streams not seen yet take effect when their stream is created.
        self._open_at_start.update(opened)
        return ops
