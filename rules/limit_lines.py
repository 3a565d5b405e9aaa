"""The limits a subject's device is judged against, per metric, as the engine binds them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from rules.bound import Bound
from rules.engine import _matches  # the engine's own selector test, so both agree
from rules.limits import MissingAttributeError
from rules.spec import Rule
from subjects.models import DeviceContext

# Kinds whose limit is a value of the metric itself (a line on its chart).
_LINE_KINDS = ("threshold", "window")


@dataclass(frozen=True, slots=True)
class LimitLine:
    rule_id: str
    title: str
    value: float


def limit_lines(
    rules: Iterable[Rule], ctx: DeviceContext, metric: str, at: datetime
) -> list[LimitLine]:
    """Limits in force at `at` of the rules that watch `metric` on this device: fixed ones,
    the subject's permit attributes ({attribute: ...}) and dated ones alike."""
    out = []
    for rule in rules:
        if rule.kind not in _LINE_KINDS or rule.selector.metric != metric:
            continue
        if not _matches(rule.selector, ctx):
            continue
        try:
            # Credit tiers change holds and severity, never a limit: no credit table needed.
            bound = Bound(rule, ctx.device_id, ctx, {}, cap=1)
        except MissingAttributeError:
            continue  # the subject has no such permit value: the rule skips it too
        value = bound.limit_at(at.timestamp())
        if value is not None:
            out.append(LimitLine(rule.id, rule.title, value))
    return out
