"""Settings of the rule engine."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from subjects.credit import HANDLING
from subjects.models import Grade


class CreditModifier(BaseModel):
    """How a credit grade changes the handling of a rule's clues: hold time and severity.

    There is deliberately no threshold margin: a legal or permit limit is the same for every
    grade (docs/rules.md, "Credit changes handling, never the law").
    """

    model_config = ConfigDict(extra="forbid")

    hold_factor: float = Field(
        gt=0,
        description="multiplies `for`, `keep_firing_for` and absence/flatline durations: "
        "below 1 a clue opens (escalates) sooner",
    )
    severity_shift: int = Field(
        ge=-3,
        le=3,
        description="severity steps added (info < warning < major < critical); severity picks "
        "who handles it (joint inspection threshold, routing) and the task's deadline",
    )


def _default_credit() -> dict[Grade, CreditModifier]:
    # The scheme data (subjects/credit_handling.yaml) holds every grade's handling in one table.
    return {
        grade: CreditModifier(hold_factor=h.hold_factor, severity_shift=h.severity_shift)
        for grade, h in HANDLING.items()
    }


class RulesSettings(BaseModel):
    """Where rules come from and how late data may be."""

    model_config = ConfigDict(extra="forbid")

    directory: Path = Field(
        default=Path("deploy/rules"), description="directory of rule YAML files"
    )
    allowed_lateness_s: float = Field(
        default=60.0, ge=0, description="readings this late are still applied in event order"
    )
    queue_max_batches: int = Field(
        default=2048,
        ge=1,
        description="batches (of readings, detections or statuses) waiting for the engine; "
        "when full the ingest writer blocks, which back-pressures MQTT without loss",
    )
    tick_interval_s: float = Field(
        default=1.0, gt=0, description="how often absence and detection-clear rules are checked"
    )
    rebuild_lookback_max_s: float = Field(
        default=26 * 3600.0,
        gt=0,
        description="at start, state is rebuilt from at most this much stored history",
    )
    directory_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="device bindings are looked up again after this long (bindings change)",
    )
    max_trigger_values: int = Field(
        default=50, ge=1, description="readings kept per clue as its trigger evidence"
    )
    credit: dict[Grade, CreditModifier] = Field(
        default_factory=_default_credit,
        description="credit-tiered handling per grade of each scheme (A-D, green..black): "
        "hold and severity only, never a limit (docs/rules.md)",
    )
