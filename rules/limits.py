"""Limits of a rule resolved against one subject: numbers, subject attributes, dated spans."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rules.spec import DatedLimit, Limit
from subjects.models import DeviceContext

Cmp = Callable[[float, float], bool]
OPS: dict[str, Cmp] = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}

LIMIT_ZONE = "Asia/Shanghai"  # days of a threshold rule's dated limits


class MissingAttributeError(LookupError):
    """A limit refers to a subject attribute the subject does not have."""


def resolve(value: Limit, ctx: DeviceContext | None, rule_id: str) -> float:
    if isinstance(value, int | float):
        return float(value)
    attrs: Mapping[str, float] = ctx.attributes if ctx is not None else {}
    if value.attribute not in attrs:
        raise MissingAttributeError(
            f"rule {rule_id}: the subject has no attribute {value.attribute!r}"
        )
    return float(attrs[value.attribute]) * value.factor


def dated(
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
        out.append((lo, hi, resolve(d.value, ctx, rule_id)))
    return tuple(out)
