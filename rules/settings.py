"""Settings of the rule engine."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from subjects.models import CreditGrade


class CreditModifier(BaseModel):
    """How a credit grade changes a rule: hold time, threshold margin, severity."""

    model_config = ConfigDict(extra="forbid")

    hold_factor: float = Field(
        gt=0, description="multiplies `for`, `keep_firing_for` and absence durations"
    )
    margin: float = Field(
        gt=-1,
        lt=1,
        description="relative threshold margin: +0.1 lets values 10% past the limit pass, "
        "-0.1 flags 10% before it",
    )
    severity_shift: int = Field(
        ge=-3, le=3, description="severity steps added (info < warning < major < critical)"
    )


def _default_credit() -> dict[CreditGrade, CreditModifier]:
    return {
        CreditGrade.A: CreditModifier(hold_factor=1.5, margin=0.05, severity_shift=-1),
        CreditGrade.B: CreditModifier(hold_factor=1.0, margin=0.0, severity_shift=0),
        CreditGrade.C: CreditModifier(hold_factor=0.75, margin=-0.05, severity_shift=0),
        CreditGrade.D: CreditModifier(hold_factor=0.5, margin=-0.1, severity_shift=1),
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
    credit: dict[CreditGrade, CreditModifier] = Field(
        default_factory=_default_credit,
        description="credit-tiered supervision: modifiers per grade A-D (docs/rules.md)",
    )
