"""Credit-tiered handling: how a subject's credit grade changes a clue's hold and severity."""

from __future__ import annotations

from collections.abc import Mapping

from rules.models import Severity
from rules.settings import CreditModifier
from subjects.models import Grade

_BY_RANK = sorted(Severity, key=lambda s: s.rank)
NEUTRAL = CreditModifier(hold_factor=1.0, severity_shift=0)


def modifier(
    table: Mapping[Grade, CreditModifier], grade: Grade | None, tiered: bool
) -> CreditModifier:
    """The modifier for `grade`; neutral for untiered rules and unbound devices."""
    if not tiered or grade is None:
        return NEUTRAL
    return table.get(grade, NEUTRAL)


def hold(seconds: float, mod: CreditModifier) -> float:
    return seconds * mod.hold_factor


def severity(base: Severity, mod: CreditModifier) -> Severity:
    rank = min(max(base.rank + mod.severity_shift, 0), len(_BY_RANK) - 1)
    return _BY_RANK[rank]
