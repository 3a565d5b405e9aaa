"""Settings of the rule engine."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RulesSettings(BaseModel):
    """Where rules come from and how late data may be."""

    model_config = ConfigDict(extra="forbid")

    directory: Path = Field(
        default=Path("deploy/rules"), description="directory of rule YAML files"
    )
    allowed_lateness_s: float = Field(
        default=60.0, ge=0, description="readings this late are still applied in event order"
    )
