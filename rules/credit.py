"""Credit-tiered supervision: how a subject's credit grade changes hold, limits and severity."""

from __future__ import annotations

from collections.abc import Mapping

from rules.models import Severity
from rules.settings import CreditModifier
from subjects.models import CreditGrade

_BY_RANK = sorted(Severity, key=lambda s: s.rank)
NEUTRAL = CreditModifier(hold_factor=1.0, margin=0.0, severity_shift=0)


def modifier(
    table: Mapping[CreditGrade, CreditModifier], grade: CreditGrade | None, tiered: bool
) -> CreditModifier:
    """The modifier for `grade`; neutral for untiered rules and unbound devices."""
    if not tiered or grade is None:
        return NEUTRAL
    return table.get(grade, NEUTRAL)


def hold(seconds: float, mod: CreditModifier) -> float:
    return seconds * mod.hold_factor


def limit(value: float, op: str, mod: CreditModifier) -> float:
    """Move a limit by the margin: positive margin tolerates more, negative flags sooner."""
    if mod.margin == 0:
        return value
    delta = abs(value) * mod.margin
    # For an upper limit (> / >=) tolerating more means a higher limit; for a lower one, lower.
    return value + delta if op in (">", ">=") else value - delta


def severity(base: Severity, mod: CreditModifier) -> Severity:
    rank = min(max(base.rank + mod.severity_shift, 0), len(_BY_RANK) - 1)
    return _BY_RANK[rank]
